"""Reading a member's points: balance, pending, debt, what expires or matures soon, and her
history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from zhongtai.core.pagination import PageParams, paginate
from zhongtai.loyalty.models import MemberTier, PointsAccount, PointsEntry, PointsLot
from zhongtai.loyalty.tier_rules import Tier
from zhongtai.members import service as members


@dataclass(frozen=True)
class Expiring:
    expires_at: datetime
    points: int


@dataclass(frozen=True)
class Maturing:
    matures_at: datetime
    points: int


@dataclass(frozen=True)
class PointsBalance:
    member_id: uuid.UUID
    #: Spendable now: lots past their date no longer count, even before the job expires them,
    #: and pending lots whose window has passed do (less the debt they will pay off).
    balance: int
    debt: int
    #: Earned but not spendable yet: inside their orders' return windows.
    pending: int
    expiring: list[Expiring]
    maturing: list[Maturing]
    tier: Tier
    #: When her tier is next reviewed (None: never reviewed, the standard tier).
    tier_review_at: datetime | None = None


def points_balance(
    session: Session,
    member_id: uuid.UUID,
    now: datetime,
    *,
    expiring_lots: int = 3,
    expiring_within: timedelta | None = None,
) -> PointsBalance:
    """Her points as of ``now``, read without changing anything: what the ledger will hold once
    the jobs have expired and matured what is due. ``expiring`` lists the next
    ``expiring_lots`` expiry dates, or, with ``expiring_within``, every date within it."""
    member = members.get_member(session, member_id)
    tier = session.get(MemberTier, member.id, populate_existing=True)
    live = or_(PointsLot.expires_at.is_(None), PointsLot.expires_at > now)
    waiting = PointsLot.pending.is_(True) & (PointsLot.matures_at > now)
    due = PointsLot.pending.is_(True) & (PointsLot.matures_at <= now)

    def total(which: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((which, PointsLot.remaining), else_=0)), 0)

    held, matured, pending = session.execute(
        select(total(PointsLot.pending.is_(False)), total(due), total(waiting)).where(
            PointsLot.member_id == member.id, PointsLot.remaining > 0, live
        )
    ).one()
    debt = int(
        session.scalar(select(PointsAccount.debt).where(PointsAccount.member_id == member.id)) or 0
    )
    # Matured points pay off her debt first, as the maturing entry will book it.
    settles = min(debt, int(matured))
    # Pending lots still inside their return window cannot expire before they mature.
    upcoming = (
        select(PointsLot.expires_at, func.sum(PointsLot.remaining))
        .where(
            PointsLot.member_id == member.id,
            PointsLot.remaining > 0,
            PointsLot.expires_at > now,
            ~waiting,
        )
        .group_by(PointsLot.expires_at)
        .order_by(PointsLot.expires_at)
    )
    if expiring_within is None:
        upcoming = upcoming.limit(expiring_lots)
    else:
        upcoming = upcoming.where(PointsLot.expires_at <= now + expiring_within)
    soon = session.execute(upcoming).all()
    maturing = session.execute(
        select(PointsLot.matures_at, func.sum(PointsLot.remaining))
        .where(PointsLot.member_id == member.id, PointsLot.remaining > 0, waiting)
        .group_by(PointsLot.matures_at)
        .order_by(PointsLot.matures_at)
        .limit(expiring_lots)
    ).all()
    return PointsBalance(
        member_id=member.id,
        balance=int(held) + int(matured) - settles,
        debt=debt - settles,
        pending=int(pending),
        expiring=[Expiring(at, int(p)) for at, p in soon if at is not None],
        maturing=[Maturing(at, int(p)) for at, p in maturing if at is not None],
        tier=tier.tier if tier else Tier.STANDARD,
        tier_review_at=tier.review_at if tier else None,
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
