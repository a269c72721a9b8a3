"""Pending points maturing: a sale's points become spendable once its return window has
passed, and pay off her debt first, one entry per lot."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.outbox import record_event
from zhongtai.loyalty.accounts import Source, book, lock_account, move, take
from zhongtai.loyalty.events import PointsMatured
from zhongtai.loyalty.models import EntryKind, PointsLot


@dataclass(frozen=True)
class MaturingRun:
    members: int
    lots: int
    points: int


def mature_due_lots(session: Session, member_id: uuid.UUID, now: datetime) -> tuple[int, int]:
    """Make the member's pending lots due by ``now`` spendable; the caller holds her lock.
    (lots, points). Called before anything spends, expires or reverses her points, so the
    balance those see is never short of what has matured."""
    due = session.execute(
        select(
            PointsLot.id,
            PointsLot.remaining,
            PointsLot.entry_id,
            PointsLot.matures_at,
            PointsLot.source_type,
            PointsLot.source_id,
        )
        .where(
            PointsLot.member_id == member_id,
            PointsLot.pending.is_(True),
            PointsLot.matures_at <= now,
        )
        .order_by(PointsLot.matures_at, PointsLot.id)
    ).all()
    total = 0
    for lot_id, remaining, entry_id, matures_at, source_type, source_id in due:
        assert matures_at is not None  # a pending lot has a date (a check constraint)
        freed = session.execute(
            update(PointsLot)
            .where(PointsLot.id == lot_id, PointsLot.pending.is_(True))
            .values(pending=False)
        ).rowcount  # type: ignore[attr-defined]
        if freed != 1:
            raise RuntimeError(f"lot {lot_id} matured twice")
        total += remaining
        if remaining == 0:
            continue  # returned in full inside its window: nothing left to mature
        # Booked under the sale's own source and dated when the window closed, so her
        # history reads "order X: pending points matured" at the right moment.
        source = Source(source_type, source_id)
        _book_maturing(session, member_id, source, lot_id, remaining, entry_id, matures_at)
    return len(due), total


def _book_maturing(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    lot_id: uuid.UUID,
    points: int,
    earn_entry_id: uuid.UUID,
    at: datetime,
) -> None:
    """Pending to balance in one statement, then the new balance pays off any debt first."""
    figures = move(session, member_id, points, pending=-points)
    if figures is None:
        raise RuntimeError(f"account of {member_id} holds fewer pending points than its lots")
    entry = book(
        session,
        member_id,
        EntryKind.MATURE,
        source,
        points=points,
        pending_change=-points,
        figures=figures,
        at=at,
        related_entry_id=earn_entry_id,
    )
    paid = min(figures[1], points)
    if paid > 0:
        settled = move(session, member_id, -paid, -paid)
        assert settled is not None  # the balance just grew by ``points`` under her lock
        settle = book(
            session,
            member_id,
            EntryKind.SETTLE,
            source,
            points=-paid,
            debt_change=-paid,
            figures=settled,
            at=at,
        )
        take(session, settle, [(lot_id, paid)])
        figures = settled
    record_event(
        session,
        PointsMatured(
            member_id=member_id,
            entry_id=entry.id,
            points=points,
            balance=figures[0],
            debt=figures[1],
            pending=figures[2],
            source_type=source.type.value,
            source_id=source.id,
            earned_entry_id=earn_entry_id,
            debt_paid=paid,
        ),
        aggregate_type="member",
        aggregate_id=member_id,
    )


def mature_points(session: Session, now: datetime, *, limit: int = 1000) -> MaturingRun:
    """The scheduled job: mature every pending lot due by ``now``, member by member (in id
    order), so balances and ``points.matured`` events follow the return windows even for
    members who do nothing. Safe to run twice or beside spending: each member is locked while
    her lots mature, and a matured lot is no longer pending. ``limit`` bounds the members."""
    member_ids = list(
        session.scalars(
            select(PointsLot.member_id)
            .where(PointsLot.pending.is_(True), PointsLot.matures_at <= now)
            .group_by(PointsLot.member_id)
            .order_by(PointsLot.member_id)
            .limit(limit)
        )
    )
    lots = points = 0
    for member_id in member_ids:
        locked = lock_account(session, member_id, allow_erased=True)
        n, p = mature_due_lots(session, locked, now)
        lots, points = lots + n, points + p
    return MaturingRun(members=len(member_ids), lots=lots, points=points)


def mature_points_now(session: Session) -> int:
    """For `serve`'s housekeeping: one batch of members whose pending points are due; how many
    lots matured."""
    return mature_points(session, utcnow()).lots
