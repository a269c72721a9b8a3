"""Pure coupon rules: what a coupon takes off an order (满减 with threshold, percent with cap)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CouponKind(StrEnum):
    #: 满减: ``value`` fen off an order of at least ``threshold_fen``.
    AMOUNT_OFF = "amount_off"
    #: ``value`` percent off, at most ``cap_fen``.
    PERCENT_OFF = "percent_off"


@dataclass(frozen=True)
class CouponTerms:
    kind: CouponKind
    value: int
    threshold_fen: int = 0
    cap_fen: int | None = None


def coupon_discount(terms: CouponTerms, order_fen: int) -> int:
    """The discount on an order of ``order_fen``: 0 below the threshold, never more than the
    order, never more than the cap."""
    if order_fen <= 0 or order_fen < terms.threshold_fen:
        return 0
    if terms.kind is CouponKind.AMOUNT_OFF:
        discount = terms.value
    else:
        discount = order_fen * terms.value // 100
    if terms.cap_fen is not None:
        discount = min(discount, terms.cap_fen)
    return max(0, min(discount, order_fen))
