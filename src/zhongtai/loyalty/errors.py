"""Errors of the loyalty context with their own stable problem types."""

from __future__ import annotations

from zhongtai.core.errors import Conflict


class InsufficientPoints(Conflict):
    slug = "insufficient-points"
    title = "Not enough points"

    def __init__(self, *, requested: int, available: int) -> None:
        super().__init__(
            f"{requested} points requested, {available} available.",
            requested=requested,
            available=available,
        )


class SourceAlreadyRecorded(Conflict):
    """The source was already booked with other figures: a replay must repeat the first one."""

    slug = "points-source-reused"
    title = "This source was already recorded differently"

    def __init__(self, *, source: str, kind: str, recorded: int, requested: int) -> None:
        super().__init__(
            f"{kind} for {source} was already recorded as {recorded} points, "
            f"not {requested}; use a new source id for a new operation.",
            source=source,
            kind=kind,
            recorded=recorded,
            requested=requested,
        )


class CouponLimitReached(Conflict):
    """The template's coupons are all issued, or the member holds as many as she may."""

    slug = "coupon-limit-reached"
    title = "No more coupons of this kind can be issued"


class CouponNotRedeemable(Conflict):
    """The coupon was already used (by another sale or order) or has expired."""

    slug = "coupon-not-redeemable"
    title = "The coupon cannot be redeemed"


class CouponTemplateClosed(Conflict):
    """The template is paused, or its fixed validity has ended: no more coupons of it."""

    slug = "coupon-template-closed"
    title = "This coupon is no longer given out"
