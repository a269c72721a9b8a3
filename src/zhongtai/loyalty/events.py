"""The events of the loyalty context: every change of a member's points."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from zhongtai.core.outbox import event_type


class _PointsChange(BaseModel):
    member_id: uuid.UUID
    entry_id: uuid.UUID
    points: int
    balance: int
    debt: int
    #: Her points still inside their orders' return windows, after the change.
    pending: int = 0
    source_type: str
    source_id: str


@event_type("points.earned")
class PointsEarned(_PointsChange):
    """A member earned points (a sale, an order, a campaign); ``debt_paid`` went to her debt.
    With ``matures_at`` the points are pending until then (the order's return window): they
    count in ``pending``, not ``balance``, and ``points.matured`` follows."""

    debt_paid: int
    matures_at: datetime | None = None


@event_type("points.matured")
class PointsMatured(_PointsChange):
    """Pending points of a sale became spendable (its return window passed); ``debt_paid`` of
    them went to her debt."""

    earned_entry_id: uuid.UUID
    debt_paid: int


@event_type("points.redeemed")
class PointsRedeemed(_PointsChange):
    """A member paid with points (``points`` is negative)."""


@event_type("points.reversed")
class PointsReversed(_PointsChange):
    """A return took back points; ``pending_taken`` of them were still pending, ``debt_added``
    is what could not be taken (already spent)."""

    debt_added: int
    pending_taken: int = 0


@event_type("points.adjusted")
class PointsAdjusted(_PointsChange):
    """HQ corrected a member's points by hand, with a reason."""

    reason: str


@event_type("points.expired")
class PointsExpired(_PointsChange):
    """Points of one lot reached their expiry date unspent."""


@event_type("tier.changed")
class TierChanged(BaseModel):
    """A member moved up (at once, on spend) or down (at her review date) a tier."""

    member_id: uuid.UUID
    previous: str
    tier: str
    review_at: datetime
    rolling_spend_fen: int


@event_type("coupon.issued")
class CouponIssued(BaseModel):
    """A member received a coupon (a campaign, a guide, a claim)."""

    coupon_id: uuid.UUID
    template_id: uuid.UUID
    member_id: uuid.UUID
    expires_at: datetime


@event_type("coupon.redeemed")
class CouponRedeemed(BaseModel):
    """A coupon was used, once, by a sale or an order."""

    coupon_id: uuid.UUID
    member_id: uuid.UUID
    source_type: str
    source_id: str
    discount_fen: int
