"""Ninety days of the demo chain's orders as rows: till sales and online orders of every channel
and fulfilment type, bought by members who had signed up (with the coupons they held), with their
timelines, payments, a few cancellations and returns."""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import accumulate
from zoneinfo import ZoneInfo

from zhongtai.catalog.models import ProductKind
from zhongtai.demo import rhythm
from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.loyalty import CouponCampaigns, CouponChoice
from zhongtai.demo.members import Shopper
from zhongtai.demo.seeded import stream, uuid7_at
from zhongtai.demo.sites import StoreFormat
from zhongtai.demo.store_trade import StoreTrade
from zhongtai.orders.codes import business_date, receipt_number
from zhongtai.orders.kinds import (
    FulfillmentType,
    LineKind,
    OrderStatus,
    SalesChannel,
    SubstitutionPreference,
    TenderType,
)
from zhongtai.orders.models import ItemCondition, PaymentStatus, RefundReason
from zhongtai.orders.pricing_rules import (
    BasketLine,
    DeliveryFeeRule,
    Discount,
    PricedBasket,
    price_basket,
)
from zhongtai.orders.rules import return_refund
from zhongtai.stores.rules import distance_m

HISTORY_DAYS = 90
ACTOR = "demo:history"
CURRENCY = "CNY"
#: The checkout's default delivery fee: ¥6, free from ¥59.
DELIVERY_FEE = DeliveryFeeRule(fee=600, free_from=5900)
#: A store promotion some baskets qualify for: ¥10 off from ¥100.
PROMOTION = ("promotion:demo-满100减10", 10_000, 1_000)
#: Order numbers as the platform issues them: Crockford base-32, no I, L, O or U.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CARRIERS = ("SF Express", "ZTO Express", "JD Logistics")
#: Units of a packaged SKU on one line: mostly one.
PIECES_BOUGHT = {1: 74, 2: 17, 3: 5, 4: 2, 6: 2}
#: Lines on a till receipt, by store format.
TILL_BASKET_LINES: dict[StoreFormat, dict[int, int]] = {
    StoreFormat.SUPERMARKET: {1: 14, 2: 18, 3: 18, 4: 15, 5: 12, 6: 10, 8: 8, 10: 5},
    StoreFormat.CONVENIENCE: {1: 45, 2: 30, 3: 17, 4: 8},
    StoreFormat.DEPARTMENT: {1: 60, 2: 30, 3: 10},
}


class Outcome(StrEnum):
    COMPLETED = "completed"
    UNPAID = "unpaid"  # the payment window ended: cancelled, nothing paid
    CANCELLED = "cancelled"  # cancelled after payment (or a try-on nobody came to buy)


@dataclass
class OrderHistory:
    """Every row of the history, per table, ready for bulk insert."""

    orders: list[Row] = field(default_factory=list)
    lines: list[Row] = field(default_factory=list)
    changes: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    refunds: list[Row] = field(default_factory=list)
    returns: list[Row] = field(default_factory=list)
    return_lines: list[Row] = field(default_factory=list)
    terminals: list[Row] = field(default_factory=list)
    counters: list[Row] = field(default_factory=list)


@dataclass
class _Order:
    """One order while it is built; added to the history only if its story ends in time."""

    row: Row
    lines: list[Row]
    steps: list[tuple[OrderStatus, datetime, str | None]]
    payment: Row | None = None
    refunds: list[Row] = field(default_factory=list)
    returns: list[Row] = field(default_factory=list)
    return_lines: list[Row] = field(default_factory=list)


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


def history_window(today: date, days: int, timezone: str) -> tuple[datetime, datetime]:
    """The UTC span of the ``days`` local days before ``today``: the history ends at midnight."""
    zone = ZoneInfo(timezone)
    end = datetime.combine(today, time(0), tzinfo=zone).astimezone(UTC)
    start = datetime.combine(today - timedelta(days=days), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


class _StoreHistory:
    """Writes one store's orders; its own random stream keeps other stores' history unchanged."""

    def __init__(
        self,
        chain: DemoChain,
        trade: StoreTrade,
        stores: Sequence[Row],
        numbers: set[str],
        end: datetime,
        shoppers: Mapping[uuid.UUID, Shopper] | None = None,
        coupons: CouponCampaigns | None = None,
    ) -> None:
        self.trade = trade
        self.store = trade.store
        self.stores = stores
        self.numbers = numbers
        self.end = end
        self.rng = stream(chain.seed, f"history:{self.store['code']}")
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
        self.terminals = [
            {
                "id": uuid7_at(self.rng, end - timedelta(days=HISTORY_DAYS + 30)),
                "store_id": self.store["id"],
                "code": code,
                "is_active": True,
                "created_at": end - timedelta(days=HISTORY_DAYS + 30),
                "updated_at": end - timedelta(days=HISTORY_DAYS + 30),
            }
            for code in (("T01", "T02") if trade.format is StoreFormat.SUPERMARKET else ("T01",))
        ]
        # Members shop from a while after they signed up, some far more often than others: the
        # store's members in the order they signed up, with their cumulative pull.
        facts = shoppers or {}
        known = {m: facts.get(m, Shopper(LONG_AGO, 1.0)) for m in trade.members}
        self.members = sorted(known, key=lambda m: (known[m].registered_at, m))
        self.settled = [known[m].registered_at + SETTLING_IN for m in self.members]
        self.pull = list(accumulate(known[m].activity for m in self.members))
        self.coupons = coupons
        self.coupon_rng = stream(chain.seed, f"coupon-use:{self.store['code']}")
        self.till_sales: list[_Order] = []
        self.online_orders: list[_Order] = []
        #: The terminal and business day of each till sale, numbered once all are known.
        self.tills: dict[uuid.UUID, tuple[str, date]] = {}

    # --- shared pieces ------------------------------------------------------------------------

    def _number(self, at: datetime) -> str:
        while True:
            number = f"{at:%Y%m%d}-" + "".join(self.rng.choice(_ALPHABET) for _ in range(8))
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def _quantity(self, sku_id: uuid.UUID) -> int:
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

    def _basket(
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
            BasketLine(sku_id, sku["base_price"], sku["price_per"], self._quantity(sku_id))
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

    def _member(self, chance: float, at: datetime) -> uuid.UUID | None:
        """A member of the store who had signed up by ``at``, the keener shoppers more often."""
        if not self.members or self.rng.random() >= chance:
            return None
        joined = bisect_right(self.settled, at)
        if joined == 0:
            return None
        pick = bisect_right(self.pull, self.rng.random() * self.pull[joined - 1])
        return self.members[min(pick, joined - 1)]

    def _with_coupon(self, order: _Order, choice: CouponChoice | None) -> None:
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

    def _order(
        self,
        at: datetime,
        channel: SalesChannel,
        ftype: FulfillmentType,
        priced: PricedBasket,
        member_id: uuid.UUID | None,
    ) -> _Order:
        order_id = uuid7_at(self.rng, at)
        row: Row = {
            "id": order_id,
            "number": self._number(at),
            "channel": channel,
            "channel_order_id": None,
            "fulfillment_type": ftype,
            "status": OrderStatus.CREATED,
            "store_id": self.store["id"],
            "member_id": member_id,
            "guide_id": None,
            "quote_id": None,
            "substitution": SubstitutionPreference.NONE,
            "currency": CURRENCY,
            "subtotal": priced.subtotal,
            "discount_total": priced.discount_total,
            "delivery_fee": priced.delivery_fee,
            "total": priced.total,
            "paid_amount": 0,
            "refunded_amount": 0,
            "contact_name": None,
            "contact_phone_masked": None,
            "contact_phone_sealed": None,
            "address": None,
            "note": None,
            "reservation_ids": [],
            "offers": None,
            "placed_at": at,
            "payment_due_at": None,
            "promised_ready_at": None,
            "promised_by": None,
            "completed_at": None,
            "pickup_code_digest": None,
            "pickup_code_sealed": None,
            "receipt_number": None,
            "terminal_id": None,
            "client_sale_id": None,
            "business_date": None,
            "actor": ACTOR,
            "created_at": at,
            "updated_at": at,
        }
        lines = [
            {
                "id": uuid7_at(self.rng, at),
                "order_id": order_id,
                "line_no": i + 1,
                "kind": LineKind.GOODS,
                "sku_id": line.sku_id,
                "service": None,
                "location_id": self.store["id"],
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "price_per": line.price_per,
                "amount": line.amount,
                "discount": line.discount,
                "net_amount": line.net,
                "picked_quantity": None,
                "substitute_sku_id": None,
                "substitute_quantity": None,
                "short_refund": 0,
                "returned_quantity": 0,
                "returned_refund": 0,
            }
            for i, line in enumerate(priced.lines)
        ]
        return _Order(row, lines, [(OrderStatus.CREATED, at, None)])

    def _pay(self, order: _Order, tender: TenderType, at: datetime, *, online: bool) -> None:
        total = order.row["total"]
        tendered = None
        if tender is TenderType.CASH:
            note = self.rng.choice((1000, 5000, 10000))  # a ¥10, ¥50 or ¥100 note
            tendered = max(total, math.ceil(total / note) * note)
        order.payment = {
            "id": uuid7_at(self.rng, at),
            "order_id": order.row["id"],
            "tender": tender,
            "amount": total,
            "tendered": tendered,
            "status": PaymentStatus.CAPTURED,
            "provider": "sandbox" if online else None,
            "provider_ref": f"sbx_pay_{self.rng.getrandbits(128):032x}" if online else None,
            "provider_sequence": 1 if online else 0,
            "refunded_amount": 0,
            "captured_at": at,
            "created_at": at,
            "updated_at": at,
        }
        order.row["paid_amount"] = total

    def _refund(
        self,
        order: _Order,
        amount: int,
        reason: RefundReason,
        at: datetime,
        return_id: uuid.UUID | None = None,
    ) -> None:
        payment = order.payment
        assert payment is not None, "only a paid order is refunded"
        order.refunds.append(
            {
                "id": uuid7_at(self.rng, at),
                "order_id": order.row["id"],
                "payment_id": payment["id"],
                "tender": payment["tender"],
                "amount": amount,
                "reason": reason,
                "return_id": return_id,
                "occurred_at": at,
            }
        )
        payment["refunded_amount"] += amount
        payment["updated_at"] = at
        order.row["refunded_amount"] += amount

    def _maybe_return(self, order: _Order, chance: float) -> None:
        """Now and then goods come back within ten days, mostly to the same store."""
        completed_at = order.steps[-1][1]
        at = completed_at + _minutes(self.rng, 60, 10 * 24 * 60)
        if order.payment is None or at >= self.end or self.rng.random() >= chance:
            return
        line = self.rng.choice(order.lines)
        whole = line["sku_id"] in self.weighed or line["quantity"] == 1
        quantity = line["quantity"] if whole else self.rng.randint(1, line["quantity"])
        refund = return_refund(line["net_amount"], line["quantity"], 0, quantity)
        if refund <= 0:
            return
        same_store = self.rng.random() < 0.8 or len(self.stores) == 1
        where = self.store if same_store else self.rng.choice(self.stores)
        return_id = uuid7_at(self.rng, at)
        reason = self.rng.choice(("质量问题", "尺码不合适", "买重了", "不想要了"))
        order.returns.append(
            {
                "id": return_id,
                "order_id": order.row["id"],
                "reference": f"RET-{order.row['number']}-1",
                "store_id": where["id"],
                "refund_total": refund,
                "reason": reason,
                "occurred_at": at,
                "actor": ACTOR,
            }
        )
        condition = ItemCondition.RESELLABLE if self.rng.random() < 0.8 else ItemCondition.DAMAGED
        order.return_lines.append(
            {
                "return_id": return_id,
                "order_line_id": line["id"],
                "quantity": quantity,
                "condition": condition,
                "refund": refund,
            }
        )
        line["returned_quantity"] = quantity
        line["returned_refund"] = refund
        self._refund(order, refund, RefundReason.RETURN, at, return_id)
        everything = len(order.lines) == 1 and quantity == line["quantity"]
        status = OrderStatus.RETURNED if everything else OrderStatus.PARTIALLY_RETURNED
        order.steps.append((status, at, f"return at {where['code']}"))

    # --- the till -------------------------------------------------------------------------------

    def till_sale(self, at: datetime) -> None:
        size = rhythm.pick(self.rng, TILL_BASKET_LINES[self.trade.format])
        member = self._member(0.35, at)
        basket = self._basket("all", size, None, member, (at, SalesChannel.POS))
        if basket is None:
            return
        priced, coupon = basket
        order = self._order(at, SalesChannel.POS, FulfillmentType.IN_STORE, priced, member)
        terminal = self.rng.choice(self.terminals)
        day = business_date(at, self.store["timezone"])
        order.row.update(
            client_sale_id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            terminal_id=terminal["id"],
            business_date=day,
            completed_at=at,
        )
        self.tills[order.row["id"]] = (terminal["code"], day)
        for line in order.lines:
            line["picked_quantity"] = line["quantity"]
        self._pay(order, rhythm.pick(self.rng, rhythm.TILL_TENDERS), at, online=False)
        order.steps += [(OrderStatus.PAID, at, None), (OrderStatus.COMPLETED, at, None)]
        self._maybe_return(order, 0.008)
        self._with_coupon(order, coupon)
        self.till_sales.append(order)

    def number_receipts(self, history: OrderHistory) -> None:
        """Receipts count from 1 per terminal and business day, in the order they were rung up."""
        last: dict[tuple[str, date], int] = {}
        terminal_ids = {t["code"]: t["id"] for t in self.terminals}
        for order in sorted(self.till_sales, key=lambda o: o.row["placed_at"]):
            code, day = self.tills[order.row["id"]]
            last[(code, day)] = last.get((code, day), 0) + 1
            order.row["receipt_number"] = receipt_number(
                self.store["code"], code, day, last[(code, day)]
            )
            self.add(history, order)
        history.terminals += self.terminals
        history.counters += [
            {"terminal_id": terminal_ids[code], "business_date": day, "last_number": n}
            for (code, day), n in sorted(last.items())
        ]

    # --- online ---------------------------------------------------------------------------------

    def _online_type(self, channel: SalesChannel) -> FulfillmentType | None:
        offered = self.trade.online_types
        if channel is SalesChannel.MARKETPLACE:  # marketplaces sell delivery and pickup only
            offered = tuple(
                t for t in offered if t in (FulfillmentType.DELIVERY, FulfillmentType.PICKUP)
            )
        mix = {t: w for t, w in rhythm.FULFILMENT_MIX.items() if t in offered}
        return rhythm.pick(self.rng, mix) if mix else None

    def _address(self) -> dict[str, object]:
        radius = (self.trade.delivery_radius_m or 3000) * 0.9
        lat, lng = self.store["latitude"], self.store["longitude"]
        for _ in range(20):
            dlat = self.rng.uniform(-1, 1) * radius / 111_195
            dlng = self.rng.uniform(-1, 1) * radius / (111_195 * math.cos(math.radians(lat)))
            if distance_m(lat, lng, lat + dlat, lng + dlng) <= radius:
                break
        lane, building = self.rng.randint(1, 300), self.rng.randint(1, 30)
        return {
            "latitude": round(lat + dlat, 6),
            "longitude": round(lng + dlng, 6),
            "text": f"{self.store['region']}{lane}弄{building}号",
        }

    def online_order(self, at: datetime) -> None:
        rng = self.rng
        channel = rhythm.pick(rng, rhythm.ONLINE_CHANNELS)
        if channel is SalesChannel.GUIDE_SHARE and self.trade.guide_id is None:
            channel = SalesChannel.MINI_PROGRAM
        ftype = self._online_type(channel)
        if ftype is None:
            return
        assortment, sizes = {
            FulfillmentType.DELIVERY: ("deliverable", (1, 2, 3, 4, 5, 6)),
            FulfillmentType.PICKUP: ("all", (1, 2, 3, 4, 5)),
            FulfillmentType.SHIP: ("all", (1, 2, 3)),
            FulfillmentType.RESERVE_TRY: ("apparel", (1, 2, 3)),
        }[ftype]
        fee = DELIVERY_FEE if ftype in (FulfillmentType.DELIVERY, FulfillmentType.SHIP) else None
        member = None if channel is SalesChannel.MARKETPLACE else self._member(0.85, at)
        # A try-on is paid at the till, if at all: no coupon is priced into it online.
        coupon_at = None if ftype is FulfillmentType.RESERVE_TRY else (at, channel)
        basket = self._basket(assortment, rng.choice(sizes), fee, member, coupon_at)
        if basket is None:
            return
        priced, coupon = basket
        order = self._order(at, channel, ftype, priced, member)
        row = order.row
        if channel is SalesChannel.MARKETPLACE:
            row["channel_order_id"] = f"MT{rng.getrandbits(56):017d}"
        if channel is SalesChannel.GUIDE_SHARE:
            row["guide_id"] = self.trade.guide_id
        row["contact_name"] = rng.choice("王李张刘陈杨赵黄周吴") + rng.choice(("女士", "先生"))
        row["contact_phone_masked"] = (
            f"1{rng.choice('3589')}{rng.randint(0, 9)}****{rng.randint(0, 9999):04d}"
        )
        if ftype in (FulfillmentType.DELIVERY, FulfillmentType.SHIP):
            row["address"] = self._address()
        if ftype is FulfillmentType.DELIVERY and rng.random() < 0.4:
            row["substitution"] = SubstitutionPreference.SIMILAR
        self._promise(row, ftype, at)
        self._journey(order, ftype, at)
        if order.steps[-1][1] >= self.end:
            return  # its story runs past the history's end: today's orders are the simulator's
        self._with_coupon(order, coupon)
        self.online_orders.append(order)

    def _promise(self, row: Row, ftype: FulfillmentType, at: datetime) -> None:
        ready = at + timedelta(minutes=15 if ftype is FulfillmentType.DELIVERY else 40)
        row["promised_ready_at"] = ready
        row["promised_by"] = {
            FulfillmentType.DELIVERY: at + timedelta(minutes=self.rng.choice((30, 35, 45))),
            FulfillmentType.SHIP: ready + timedelta(days=2),
        }.get(ftype, ready)

    def _journey(self, order: _Order, ftype: FulfillmentType, at: datetime) -> None:
        """The order's steps, as the state machine allows them, and what each step wrote."""
        rng, row, steps = self.rng, order.row, order.steps
        roll = rng.random()
        t = at
        if ftype is FulfillmentType.RESERVE_TRY:
            outcome = Outcome.COMPLETED if roll < 0.55 else Outcome.CANCELLED
        else:
            row["payment_due_at"] = at + timedelta(minutes=15)
            outcome = (
                Outcome.UNPAID
                if roll < 0.025
                else Outcome.CANCELLED
                if roll < 0.04
                else Outcome.COMPLETED
            )
            if outcome is Outcome.UNPAID:
                self._close(order, OrderStatus.CANCELLED, at + timedelta(minutes=15), "unpaid")
                return
            t += _minutes(rng, 0.3, 3)
            self._pay(order, rhythm.pick(rng, rhythm.ONLINE_TENDERS), t, online=True)
            row["payment_due_at"] = None
            steps.append((OrderStatus.PAID, t, None))
            if outcome is Outcome.CANCELLED:
                t += _minutes(rng, 2, 20)
                self._refund(order, row["total"], RefundReason.CANCELLED, t)
                self._close(order, OrderStatus.CANCELLED, t, "customer changed their mind")
                return
        slow = ftype is FulfillmentType.SHIP
        for status, low, high in (
            (OrderStatus.ACCEPTED, 1, 180 if slow else 8),
            (OrderStatus.PICKING, 1, 60 if slow else 10),
            (OrderStatus.PACKED, 4, 60 if slow else 15),
        ):
            t += _minutes(rng, low, high)
            steps.append((status, t, None))
        for line in order.lines:
            line["picked_quantity"] = line["quantity"]
        if ftype is FulfillmentType.DELIVERY:
            t += _minutes(rng, 3, 12)
            steps.append((OrderStatus.OUT_FOR_DELIVERY, t, "rider collected"))
            t += _minutes(rng, 8, 25)
            self._close(order, OrderStatus.COMPLETED, t, "delivered by rider")
        elif ftype is FulfillmentType.SHIP:
            t += _minutes(rng, 30, 600)
            tracking = f"{rng.choice(_CARRIERS)} SF{rng.randint(10**11, 10**12 - 1)}"
            steps.append((OrderStatus.SHIPPED, t, tracking))
            self._close(order, OrderStatus.COMPLETED, t + _minutes(rng, 18 * 60, 60 * 60), None)
        else:
            t += _minutes(rng, 1, 5)
            steps.append((OrderStatus.READY_FOR_PICKUP, t, None))
            if outcome is Outcome.CANCELLED:  # the try-on customer never came, or bought nothing
                t += _minutes(rng, 6 * 60, 72 * 60)
                self._close(order, OrderStatus.CANCELLED, t, "customer did not buy")
                return
            t += _minutes(rng, 20, 8 * 60)
            self._close(order, OrderStatus.COMPLETED, t, "picked up")
        if row["status"] is OrderStatus.COMPLETED and row["paid_amount"]:
            self._maybe_return(order, 0.025)

    def _close(self, order: _Order, status: OrderStatus, at: datetime, note: str | None) -> None:
        order.steps.append((status, at, note))
        order.row["status"] = status
        if status is OrderStatus.COMPLETED:
            order.row["completed_at"] = at

    def add(self, history: OrderHistory, order: _Order) -> None:
        """Adds an order's rows; its status and last change are those of its last step."""
        row = order.row
        previous: OrderStatus | None = None
        for step, (status, at, note) in enumerate(order.steps):
            history.changes.append(
                {
                    "id": uuid7_at(self.rng, at, step),
                    "order_id": row["id"],
                    "from_status": previous.value if previous else None,
                    "to_status": status.value,
                    "occurred_at": at,
                    "actor": ACTOR,
                    "note": note,
                }
            )
            previous = status
        row["status"] = previous
        row["updated_at"] = order.steps[-1][1]
        history.orders.append(row)
        history.lines += order.lines
        if order.payment is not None:
            history.payments.append(order.payment)
        history.refunds += order.refunds
        history.returns += order.returns
        history.return_lines += order.return_lines


def build_order_history(
    chain: DemoChain,
    trades: Sequence[StoreTrade],
    *,
    today: date,
    days: int = HISTORY_DAYS,
    shoppers: Mapping[uuid.UUID, Shopper] | None = None,
    coupons: CouponCampaigns | None = None,
) -> OrderHistory:
    """The chain's orders of the ``days`` local days before ``today``, their buyers drawn from
    the members who had signed up by then (the keener ``shoppers`` more often; without them,
    every member alike), with the ``coupons`` members held. Pure but for the coupons, whose
    uses the orders record: the same chain, trades, day and members give the same rows, ids
    included."""
    history = OrderHistory()
    numbers: set[str] = set()
    stores = [t.store for t in trades]
    for trade in trades:
        timezone = trade.store["timezone"]
        start, end = history_window(today, days, timezone)
        writer = _StoreHistory(chain, trade, stores, numbers, end, shoppers, coupons)
        share = rhythm.ONLINE_SHARE[trade.format]
        hours = rhythm.opening_hours(trade.format, overnight=_overnight(chain, trade))
        for offset in range(days, 0, -1):
            day = today - timedelta(days=offset)
            count = rhythm.orders_on(writer.rng, day, trade.format)
            for at in rhythm.moments_on(writer.rng, day, hours, count, timezone):
                if not start <= at < end:
                    continue
                if writer.rng.random() < share:
                    writer.online_order(at)
                else:
                    writer.till_sale(at)
        writer.number_receipts(history)
        for order in writer.online_orders:
            writer.add(history, order)
    return history


def _overnight(chain: DemoChain, trade: StoreTrade) -> bool:
    """Open past midnight: the store's weekly hours close before they open."""
    return any(
        h["closes_at"] < h["opens_at"]
        for h in chain.opening_hours
        if h["location_id"] == trade.store["id"]
    )
