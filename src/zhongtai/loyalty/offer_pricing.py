"""Pure pricing of a basket with its offers: promotions first, then the shopper's coupons."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from zhongtai.loyalty.coupon_rules import CouponOffer, coupon_verdict
from zhongtai.loyalty.promotion_rules import (
    Explanation,
    OfferContext,
    OfferLine,
    Promotion,
    apply_promotions,
)
from zhongtai.orders.pricing_rules import (
    DeliveryFeeRule,
    Discount,
    PricedBasket,
    allocate_discount,
    price_basket,
)


@dataclass(frozen=True)
class Gift:
    """What a gift coupon gives: ``quantity`` units of a SKU, free, because of ``source``.

    ``threshold_fen`` and ``counted`` (each covered line's index and what it still cost when
    the coupon judged the basket) are what earned the gift: a return that leaves less than
    the threshold of those lines with the customer takes the gift's worth back
    (``orders.gift_returns``)."""

    source: str
    sku_id: uuid.UUID
    quantity: int
    threshold_fen: int = 0
    counted: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class PricedOffers:
    basket: PricedBasket
    #: Every promotion's verdict (priority order), then every coupon's (in the order given).
    explanations: tuple[Explanation, ...]
    #: The discounts as applied, in order: what the checkout hands to ``price_basket``.
    discounts: tuple[Discount, ...]
    #: Coupons that waive the delivery fee or add a gift line (the checkout adds the line).
    free_delivery: bool = False
    gifts: tuple[Gift, ...] = ()

    @property
    def gift_sku_ids(self) -> tuple[uuid.UUID, ...]:
        return tuple(g.sku_id for g in self.gifts)

    @property
    def coupons_used(self) -> tuple[str, ...]:
        """The sources ``coupon:<id>`` that gave something: the coupons to lock."""
        return tuple(
            e.source for e in self.explanations if e.applied and e.source.startswith("coupon:")
        )


def offer_discounts(
    lines: Sequence[OfferLine],
    promotions: Sequence[Promotion],
    coupons: Sequence[CouponOffer],
    context: OfferContext,
) -> tuple[tuple[Discount, ...], tuple[Explanation, ...], bool, tuple[Gift, ...]]:
    """The promotions' discounts, then each coupon's on what the lines still cost."""
    offers = apply_promotions(lines, promotions, context)
    nets = list(offers.nets)
    discounts = list(offers.discounts)
    explanations = list(offers.explanations)
    used: list[CouponOffer] = []
    free_delivery = False
    gifts: list[Gift] = []
    for coupon in coupons:
        verdict = coupon_verdict(coupon, lines, nets, context, others=used)
        explanations.append(verdict.explanation)
        if not verdict.explanation.applied:
            continue
        used.append(coupon)
        free_delivery = free_delivery or verdict.free_delivery
        if verdict.gift_sku_id is not None:
            counted = tuple((i, nets[i]) for i in verdict.counted)
            gifts.append(
                Gift(
                    coupon.source,
                    verdict.gift_sku_id,
                    verdict.gift_quantity,
                    coupon.terms.threshold_fen,
                    counted,
                )
            )
        if verdict.discount is not None:
            discount = verdict.discount
            targets = list(discount.line_indexes or ())
            parts = allocate_discount(discount.amount, [nets[i] for i in targets])
            for i, part in zip(targets, parts, strict=True):
                nets[i] -= part
            discounts.append(discount)
    return tuple(discounts), tuple(explanations), free_delivery, tuple(gifts)


def price_with_offers(
    lines: Sequence[OfferLine],
    promotions: Sequence[Promotion],
    context: OfferContext,
    *,
    coupons: Sequence[CouponOffer] = (),
    delivery_fee_rule: DeliveryFeeRule | None = None,
) -> PricedOffers:
    """Price the basket with every promotion it earns and the coupons presented: line-level
    allocation of each discount, the delivery fee (waived by a free-delivery coupon), totals."""
    discounts, explanations, free_delivery, gifts = offer_discounts(
        lines, promotions, coupons, context
    )
    basket = price_basket(
        [line.basket_line() for line in lines],
        delivery_fee_rule=None if free_delivery else delivery_fee_rule,
        discounts=discounts,
    )
    return PricedOffers(basket, explanations, discounts, free_delivery, gifts)
