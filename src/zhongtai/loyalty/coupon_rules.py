"""Pure coupon rules: what a coupon gives a basket (满减, percent with cap, fixed price, free
delivery, a gift), where it holds, when it is valid, and what it combines with."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from zhongtai.loyalty.promotion_rules import (
    PCT,
    Explanation,
    OfferContext,
    OfferLine,
    Reason,
    Scope,
    window_refusal,
)
from zhongtai.orders.pricing_rules import Discount


class CouponKind(StrEnum):
    #: 满减: ``value`` fen off an order of at least ``threshold_fen``.
    AMOUNT_OFF = "amount_off"
    #: ``value`` percent off, at most ``cap_fen``.
    PERCENT_OFF = "percent_off"
    #: One unit of the dearest item it covers for ``value`` fen.
    FIXED_PRICE = "fixed_price"
    #: No delivery fee (from ``threshold_fen``).
    FREE_DELIVERY = "free_delivery"
    #: ``value`` units (grams for weighed goods) of ``gift_sku_id`` free with the order (from
    #: ``threshold_fen``).
    GIFT_ITEM = "gift_item"


#: Kinds that take money off the goods; the others change the fee or add a line.
DISCOUNT_KINDS = frozenset({CouponKind.AMOUNT_OFF, CouponKind.PERCENT_OFF, CouponKind.FIXED_PRICE})


@dataclass(frozen=True)
class CouponTerms:
    kind: CouponKind
    value: int
    threshold_fen: int = 0
    cap_fen: int | None = None
    gift_sku_id: uuid.UUID | None = None


def coupon_discount(terms: CouponTerms, order_fen: int) -> int:
    """The discount on an order of ``order_fen``: 0 below the threshold, never more than the
    order, never more than the cap. (Fixed price, free delivery and gifts need the basket:
    see :func:`coupon_verdict`.)"""
    if order_fen <= 0 or order_fen < terms.threshold_fen:
        return 0
    if terms.kind is CouponKind.AMOUNT_OFF:
        discount = terms.value
    elif terms.kind is CouponKind.PERCENT_OFF:
        discount = order_fen * terms.value // PCT
    else:
        return 0
    if terms.cap_fen is not None:
        discount = min(discount, terms.cap_fen)
    return max(0, min(discount, order_fen))


@dataclass(frozen=True)
class Validity:
    """When a template's coupons may be used: fixed dates, or ``days`` after each is issued
    (within the fixed dates when both are given)."""

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    days: int | None = None

    def window(self, issued_at: datetime) -> tuple[datetime, datetime | None]:
        """(usable from, usable until) of a coupon issued at ``issued_at``."""
        start = max(issued_at, self.starts_at) if self.starts_at else issued_at
        ends = [e for e in (self.ends_at,) if e is not None]
        if self.days is not None:
            ends.append(issued_at + timedelta(days=self.days))
        return start, min(ends) if ends else None


@dataclass(frozen=True)
class CouponOffer:
    """A coupon the shopper presents at a checkout or till, with its template's rules."""

    coupon_id: str
    name: str
    terms: CouponTerms
    scope: Scope = field(default_factory=Scope)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    #: False: it only takes lines no promotion has discounted.
    stacks_with_promotions: bool = True
    #: False: it is the only coupon of the basket.
    stacks_with_coupons: bool = False

    @property
    def source(self) -> str:
        return f"coupon:{self.coupon_id}"


@dataclass(frozen=True)
class CouponVerdict:
    explanation: Explanation
    discount: Discount | None = None
    free_delivery: bool = False
    gift_sku_id: uuid.UUID | None = None
    gift_quantity: int = 0
    #: A gift's: the lines whose cost counted toward its threshold (a return judges them).
    counted: tuple[int, ...] = ()


def coupon_verdict(
    coupon: CouponOffer,
    lines: Sequence[OfferLine],
    nets: Sequence[int],
    context: OfferContext,
    *,
    others: Sequence[CouponOffer] = (),
) -> CouponVerdict:
    """What the coupon gives a basket whose lines now cost ``nets`` (after promotions and the
    coupons before it, ``others``). Thresholds count what the lines it covers still cost."""

    def refused(reason: Reason) -> CouponVerdict:
        return CouponVerdict(Explanation(coupon.source, coupon.name, reason))

    outside = window_refusal(coupon.starts_at, coupon.ends_at, context.now)
    outside = outside or coupon.scope.refusal(context)
    if outside is not None:
        return refused(outside)
    if others and (
        not coupon.stacks_with_coupons or any(not o.stacks_with_coupons for o in others)
    ):
        return refused(Reason.DOES_NOT_STACK)
    covered = [i for i, line in enumerate(lines) if coupon.scope.covers(line)]
    if not covered:
        return refused(Reason.NO_LINES_IN_SCOPE)
    if not coupon.stacks_with_promotions:
        covered = [i for i in covered if nets[i] == lines[i].amount]
        if not covered:
            return refused(Reason.DOES_NOT_STACK)
    room = sum(nets[i] for i in covered)
    terms = coupon.terms
    if room < terms.threshold_fen:
        return refused(Reason.BELOW_THRESHOLD)
    applied = Explanation(coupon.source, coupon.name, Reason.APPLIED)
    if terms.kind is CouponKind.FREE_DELIVERY:
        return CouponVerdict(applied, free_delivery=True)
    if terms.kind is CouponKind.GIFT_ITEM:
        return CouponVerdict(
            applied,
            gift_sku_id=terms.gift_sku_id,
            gift_quantity=terms.value,
            counted=tuple(covered),
        )
    if terms.kind is CouponKind.FIXED_PRICE:
        units = [i for i in covered if lines[i].counted_in_units and nets[i] > 0]
        if not units:
            return refused(Reason.NOT_ENOUGH_ITEMS)
        # The dearest unit gets the fixed price: the most the coupon can be worth.
        best = max(units, key=lambda i: (min(lines[i].unit_price, nets[i]), -i))
        saving = min(lines[best].unit_price, nets[best]) - terms.value
        targets: tuple[int, ...] = (best,)
        if terms.cap_fen is not None:
            saving = min(saving, terms.cap_fen)
    else:
        saving = coupon_discount(terms, room)
        targets = tuple(covered)
    if saving <= 0:
        return refused(Reason.NO_SAVING)
    return CouponVerdict(
        Explanation(coupon.source, coupon.name, Reason.APPLIED, saving, targets),
        Discount(coupon.source, saving, targets),
    )
