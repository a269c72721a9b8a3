"""Expiry of points: lots past their date lose what they have left, one entry per lot."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.outbox import record_event
from zhongtai.loyalty.accounts import Source, book, lock_account, move, take
from zhongtai.loyalty.events import PointsExpired
from zhongtai.loyalty.maturing import mature_due_lots
from zhongtai.loyalty.models import EntryKind, PointsLot, SourceType


@dataclass(frozen=True)
class ExpiryRun:
    members: int
    lots: int
    points: int


def expire_due_lots(session: Session, member_id: uuid.UUID, now: datetime) -> tuple[int, int]:
    """Expire the member's lots due by ``now``; the caller holds her lock. (lots, points).

    Pending lots due by ``now`` mature first: the balance then holds every point that may be
    spent or expired, and a lot's validity counts from when it became spendable.
    """
    mature_due_lots(session, member_id, now)
    due = session.execute(
        select(PointsLot.id, PointsLot.remaining)
        .where(
            PointsLot.member_id == member_id,
            PointsLot.remaining > 0,
            PointsLot.pending.is_(False),
            PointsLot.expires_at <= now,
        )
        .order_by(PointsLot.expires_at, PointsLot.id)
    ).all()
    total = 0
    for lot_id, remaining in due:
        figures = move(session, member_id, -remaining)
        if figures is None:
            raise RuntimeError(f"account of {member_id} holds less than its lots")
        source = Source(SourceType.LOT, str(lot_id))
        entry = book(
            session, member_id, EntryKind.EXPIRE, source, points=-remaining, figures=figures, at=now
        )
        take(session, entry, [(lot_id, remaining)])
        record_event(
            session,
            PointsExpired(
                member_id=member_id,
                entry_id=entry.id,
                points=-remaining,
                balance=figures[0],
                debt=figures[1],
                pending=figures[2],
                source_type=source.type.value,
                source_id=source.id,
            ),
            aggregate_type="member",
            aggregate_id=member_id,
        )
        total += remaining
    return len(due), total


def expire_points(session: Session, now: datetime, *, limit: int = 1000) -> ExpiryRun:
    """The scheduled job: expire every lot due by ``now``, member by member (in id order).
    A pending lot never expires before it matures: its validity starts when it does.

    Safe to run twice or beside spending: each member is locked while her lots expire, and an
    expired lot has nothing left to expire again. ``limit`` bounds the members per run.
    """
    member_ids = list(
        session.scalars(
            select(PointsLot.member_id)
            .where(PointsLot.remaining > 0, PointsLot.expires_at <= now)
            .group_by(PointsLot.member_id)
            .order_by(PointsLot.member_id)
            .limit(limit)
        )
    )
    lots = points = 0
    for member_id in member_ids:
        locked = lock_account(session, member_id, allow_erased=True)
        n, p = expire_due_lots(session, locked, now)
        lots, points = lots + n, points + p
    return ExpiryRun(members=len(member_ids), lots=lots, points=points)
