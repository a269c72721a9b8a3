"""Reading a member's points: balance, debt, what expires soon, and her history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from zhongtai.core.pagination import PageParams, paginate
from zhongtai.loyalty.models import PointsAccount, PointsEntry, PointsLot
from zhongtai.loyalty.tier_rules import Tier
from zhongtai.loyalty.tiers import current_tier
from zhongtai.members import service as members


@dataclass(frozen=True)
class Expiring:
    expires_at: datetime
    points: int


@dataclass(frozen=True)
class PointsBalance:
    member_id: uuid.UUID
    #: Spendable now: lots past their date no longer count, even before the job expires them.
    balance: int
    debt: int
    expiring: list[Expiring]
    tier: Tier


def points_balance(
    session: Session, member_id: uuid.UUID, now: datetime, *, expiring_lots: int = 3
) -> PointsBalance:
    member = members.get_member(session, member_id)
    live = or_(PointsLot.expires_at.is_(None), PointsLot.expires_at > now)
    spendable = session.scalar(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.member_id == member.id, PointsLot.remaining > 0, live
        )
    )
    debt = session.scalar(select(PointsAccount.debt).where(PointsAccount.member_id == member.id))
    soon = session.execute(
        select(PointsLot.expires_at, func.sum(PointsLot.remaining))
        .where(
            PointsLot.member_id == member.id,
            PointsLot.remaining > 0,
            PointsLot.expires_at > now,
        )
        .group_by(PointsLot.expires_at)
        .order_by(PointsLot.expires_at)
        .limit(expiring_lots)
    ).all()
    return PointsBalance(
        member_id=member.id,
        balance=int(spendable or 0),
        debt=int(debt or 0),
        expiring=[Expiring(at, int(p)) for at, p in soon if at is not None],
        tier=current_tier(session, member.id),
    )


def points_history(
    session: Session, member_id: uuid.UUID, page: PageParams
) -> tuple[list[PointsEntry], str | None]:
    """Her entries in the order they were booked (ids are time-ordered UUIDv7), including
    those of members merged into her."""
    member = members.get_member(session, member_id)
    stmt = select(PointsEntry).where(
        PointsEntry.member_id.in_(members.member_ids_of(session, member.id))
    )
    return paginate(session, stmt, [PointsEntry.id], page)
