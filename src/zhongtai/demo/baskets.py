"""What the demo history's shoppers put in their baskets and pay for them: a store's long-tailed
bestsellers, each member's staples and the goods that go together, priced with the store's
promotion and the member's best coupon; and which member, of those signed up, is at the till."""

from __future__ import annotations

import random
import uuid
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from zhongtai.catalog.models import ProductKind
from zhongtai.demo import rhythm
from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.member_coupons import CouponCampaigns, CouponChoice
from zhongtai.demo.members import Shopper
from zhongtai.demo.order_rows import OrderDraft
from zhongtai.demo.seeded import stream
from zhongtai.demo.store_trade import StoreTrade
from zhongtai.orders.kinds import OrderStatus, SalesChannel
from zhongtai.orders.pricing_rules import (
    BasketLine,
    DeliveryFeeRule,
    Discount,
    PricedBasket,
    price_basket,
)

#: A store promotion some baskets qualify for: ¥10 off from ¥100.
PROMOTION = ("promotion:demo-满100减10", 10_000, 1_000)
#: Units of a packaged SKU on one line: mostly one.
PIECES_BOUGHT = {1: 74, 2: 17, 3: 5, 4: 2, 6: 2}
#: How many staples a member keeps buying, and the share of her basket they make up.
STAPLES_PER_MEMBER = (4, 12)
STAPLE_SHARE = 0.45
#: The share of SKUs that have a companion (bought with them), and how often it comes along.
COMPANION_SHARE = 0.3
COMPANION_CHANCE = 0.35
#: A new member's first order comes at least this long after she signed up.
SETTLING_IN = timedelta(hours=1)
#: When members of a history built without their shoppers' facts signed up: long before it.
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


class StoreBaskets:
    """One store's baskets, drawn from its history stream (``rng``) as its orders are told;
    the coupons' choices draw from a stream of their own."""

    def __init__(
        self,
        chain: DemoChain,
        trade: StoreTrade,
        rng: random.Random,
        shoppers: Mapping[uuid.UUID, Shopper] | None = None,
        coupons: CouponCampaigns | None = None,
    ) -> None:
        self.store = trade.store
        self.rng = rng
        kinds = {p["id"]: p["kind"] for p in chain.catalog.products}
        self.weighed = {s["id"] for s in chain.catalog.skus if s["price_per"] > 1}
        self.apparel = {
            s["id"] for s in chain.catalog.skus if kinds[s["product_id"]] is ProductKind.APPAREL
        }
        # Some SKUs sell far more than others: a long-tailed popularity per store.
        popularity = {s["id"]: self.rng.paretovariate(1.3) for s in trade.range}
        self.assortments = {
            name: (skus, list(accumulate(popularity[s["id"]] for s in skus)))
            for name, skus in (
                ("all", trade.range),
                ("deliverable", trade.deliverable),
                ("apparel", trade.apparel),
            )
        }
        # People have habits: each member keeps coming back for a few staples, and some goods
        # go together (pasta and its sauce). Own streams: the store's history stream is not
        # shifted by how many members or SKUs there are.
        self.seed = chain.seed
        self.staples: dict[uuid.UUID, list[Row]] = {}
        pairing = stream(chain.seed, f"companions:{self.store['code']}")
        skus, cumulative = self.assortments["all"]
        self.companions: dict[uuid.UUID, Row] = (
            {
                s["id"]: pairing.choices(skus, cum_weights=cumulative)[0]
                for s in skus
                if pairing.random() < COMPANION_SHARE
            }
            if skus
            else {}
        )
        # Members shop from a while after they signed up, some far more often than others: the
        # store's members in the order they signed up, with their cumulative pull.
        facts = shoppers or {}
        known = {m: facts.get(m, Shopper(LONG_AGO, 1.0)) for m in trade.members}
        self.members = sorted(known, key=lambda m: (known[m].registered_at, m))
        self.settled = [known[m].registered_at + SETTLING_IN for m in self.members]
        self.pull = list(accumulate(known[m].activity for m in self.members))
        self.coupons = coupons
        self.coupon_rng = stream(chain.seed, f"coupon-use:{self.store['code']}")

    def quantity(self, sku_id: uuid.UUID) -> int:
        if sku_id in self.weighed:
            return self.rng.randint(15, 150) * 10  # grams, as the scale weighed them
        if sku_id in self.apparel:
            return 1
        return rhythm.pick(self.rng, PIECES_BOUGHT)

    def _staples_of(self, member_id: uuid.UUID) -> list[Row]:
        """Her staples: a handful of the store's SKUs she keeps buying (drawn once)."""
        if member_id not in self.staples:
            rng = stream(self.seed, f"staples:{member_id}")
            skus, cumulative = self.assortments["all"]
            count = rng.randint(*STAPLES_PER_MEMBER)
            self.staples[member_id] = rng.choices(skus, cum_weights=cumulative, k=count)
        return self.staples[member_id]

    def basket(
        self,
        assortment: str,
        size: int,
        fee: DeliveryFeeRule | None,
        member_id: uuid.UUID | None = None,
        coupon_at: tuple[datetime, SalesChannel] | None = None,
    ) -> tuple[PricedBasket, CouponChoice | None] | None:
        """A basket priced with the store's promotion when it qualifies and, given
        ``coupon_at`` (when, through which channel), the member's best coupon for it."""
        skus, cumulative = self.assortments[assortment]
        if not skus:
            return None
        allowed = {s["id"] for s in skus} if assortment != "all" else None
        staples = (
            [s for s in self._staples_of(member_id) if allowed is None or s["id"] in allowed]
            if member_id
            else []
        )
        chosen: dict[uuid.UUID, Row] = {}
        for _ in range(size * 3):
            if staples and self.rng.random() < STAPLE_SHARE:
                sku = self.rng.choice(staples)
            else:
                sku = self.rng.choices(skus, cum_weights=cumulative)[0]
            chosen[sku["id"]] = sku
            companion = self.companions.get(sku["id"])
            if (
                companion is not None
                and len(chosen) < size
                and (allowed is None or companion["id"] in allowed)
                and self.rng.random() < COMPANION_CHANCE
            ):
                chosen[companion["id"]] = companion
            if len(chosen) >= size:
                break
        lines = [
            BasketLine(sku_id, sku["base_price"], sku["price_per"], self.quantity(sku_id))
            for sku_id, sku in chosen.items()
        ]
        discounts: list[Discount] = []
        priced = price_basket(lines, delivery_fee_rule=fee)
        source, threshold, off = PROMOTION
        if priced.subtotal >= threshold and self.rng.random() < 0.3:
            discounts.append(Discount(source, off))
            priced = price_basket(lines, delivery_fee_rule=fee, discounts=discounts)
        if priced.total <= 0:
            return None
        choice = None
        if member_id is not None and coupon_at is not None and self.coupons is not None:
            at, channel = coupon_at
            nets = [line.net for line in priced.lines]
            where = (channel.value, self.store["id"])
            choice = self.coupons.choose(self.coupon_rng, member_id, at, where, lines, nets)
        if choice is not None:
            with_coupon = price_basket(
                lines, delivery_fee_rule=fee, discounts=[*discounts, choice.discount]
            )
            applied = with_coupon.discounts[-1].applied
            if applied > 0 and with_coupon.total > with_coupon.delivery_fee:
                discount = replace(choice.discount, amount=applied)
                return with_coupon, replace(choice, discount=discount)
        return priced, None

    def member(self, chance: float, at: datetime) -> uuid.UUID | None:
        """A member of the store who had signed up by ``at``, the keener shoppers more often."""
        if not self.members or self.rng.random() >= chance:
            return None
        joined = bisect_right(self.settled, at)
        if joined == 0:
            return None
        pick = bisect_right(self.pull, self.rng.random() * self.pull[joined - 1])
        return self.members[min(pick, joined - 1)]

    def keep_coupon(self, order: OrderDraft, choice: CouponChoice | None) -> None:
        """The coupon priced into a kept order: on the order's offers, and in the coupon's
        history (redeemed when paid, given back when cancelled or returned in full)."""
        if choice is None or self.coupons is None:
            return
        row = order.row
        amount = choice.discount.amount
        row["offers"] = {
            "explanations": [
                {
                    "source": choice.discount.source,
                    "name": choice.name,
                    "applied": True,
                    "amount": amount,
                    "why": choice.why,
                }
            ],
            "coupons": [{"coupon_id": str(choice.coupon_id), "amount": amount}],
            "free_delivery": False,
        }
        when = {status: at for status, at, _ in order.steps}
        self.coupons.record(
            choice,
            row["id"],
            placed_at=row["placed_at"],
            paid_at=order.payment["captured_at"] if order.payment else None,
            online=row["channel"] is not SalesChannel.POS,
            freed_at=when.get(OrderStatus.CANCELLED),
            returned_in_full_at=when.get(OrderStatus.RETURNED),
        )
