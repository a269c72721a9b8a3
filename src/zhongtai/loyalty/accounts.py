"""The ledger's building blocks: the locked account, entries, lots and which lots pay."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.db import conflict_insert
from zhongtai.loyalty import rules
from zhongtai.loyalty.models import (
    EntryKind,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsLotUse,
    SourceType,
)
from zhongtai.members import service as members


@dataclass(frozen=True)
class Source:
    """What caused a change: with the kind, it makes the change happen once."""

    type: SourceType
    id: str

    def __str__(self) -> str:
        return f"{self.type.value}:{self.id}"


@dataclass(frozen=True)
class Booked:
    entry: PointsEntry
    #: True when the source was already recorded and this answer is the first one.
    replayed: bool


def lock_account(
    session: Session, member_id: uuid.UUID, *, allow_erased: bool = False
) -> uuid.UUID:
    """Lock the (surviving) member and make sure her account exists; her id.

    Every change of points locks the member row first: changes of one member queue, and a
    merge (which locks both members) never interleaves with them.
    """
    member = members.lock_member(session, member_id, allow_erased=allow_erased)
    ensure_account(session, member.id)
    return member.id


def ensure_account(session: Session, member_id: uuid.UUID) -> None:
    """Open the member's account if she has none (two racing openings make one)."""
    insert = conflict_insert(session)
    session.execute(
        insert(PointsAccount)
        .values(member_id=member_id, balance=0, debt=0)
        .on_conflict_do_nothing(index_elements=[PointsAccount.member_id])
    )


def account(session: Session, member_id: uuid.UUID) -> PointsAccount | None:
    return session.scalars(
        select(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .execution_options(populate_existing=True)
    ).one_or_none()


def recorded(
    session: Session, member_id: uuid.UUID, source: Source, kind: EntryKind
) -> PointsEntry | None:
    """The entry already booked for this source and kind, for the member or anyone merged
    into her (so a replay after a merge still finds the first booking)."""
    return session.scalars(
        select(PointsEntry).where(
            PointsEntry.source_type == source.type,
            PointsEntry.source_id == source.id,
            PointsEntry.kind == kind,
            PointsEntry.member_id.in_(members.member_ids_select(member_id)),
        )
    ).first()


def move(
    session: Session, member_id: uuid.UUID, points: int, debt: int = 0, pending: int = 0
) -> tuple[int, int, int] | None:
    """Change balance, debt and pending points in one statement; a debit only if what it takes
    from is there. (balance, debt, pending) after.

    None when the balance is short: the database, not Python, decides there is enough. Pending
    points are a column of their own, so a redemption can never reach them.
    """
    stmt = (
        update(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .values(
            balance=PointsAccount.balance + points,
            debt=PointsAccount.debt + debt,
            pending=PointsAccount.pending + pending,
        )
        .returning(PointsAccount.balance, PointsAccount.debt, PointsAccount.pending)
    )
    if points < 0:
        stmt = stmt.where(PointsAccount.balance >= -points)
    if debt < 0:
        stmt = stmt.where(PointsAccount.debt >= -debt)
    if pending < 0:
        stmt = stmt.where(PointsAccount.pending >= -pending)
    row = session.execute(stmt).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


def book(
    session: Session,
    member_id: uuid.UUID,
    kind: EntryKind,
    source: Source,
    *,
    points: int,
    figures: tuple[int, int, int],
    at: datetime,
    debt_change: int = 0,
    pending_change: int = 0,
    amount_fen: int | None = None,
    related_entry_id: uuid.UUID | None = None,
    store_id: uuid.UUID | None = None,
    reason: str | None = None,
    matures_at: datetime | None = None,
    multipliers: dict[str, Any] | None = None,
) -> PointsEntry:
    """Record one change; ``figures`` are the account's (balance, debt, pending) after it."""
    entry = PointsEntry(
        member_id=member_id,
        kind=kind,
        source_type=source.type,
        source_id=source.id,
        points=points,
        debt_change=debt_change,
        pending_change=pending_change,
        balance_after=figures[0],
        debt_after=figures[1],
        pending_after=figures[2],
        amount_fen=amount_fen,
        related_entry_id=related_entry_id,
        store_id=store_id,
        reason=reason,
        occurred_at=at,
        actor=context.actor.get(),
        matures_at=matures_at,
        multipliers=multipliers,
    )
    session.add(entry)
    session.flush()
    return entry


def new_lot(
    session: Session,
    member_id: uuid.UUID,
    entry: PointsEntry,
    amount: int,
    expires_at: datetime | None,
    *,
    pending_until: datetime | None = None,
) -> PointsLot:
    """A lot for an entry's points; with ``pending_until`` they wait until then to be spent."""
    lot = PointsLot(
        member_id=member_id,
        entry_id=entry.id,
        source_type=entry.source_type,
        source_id=entry.source_id,
        amount=amount,
        remaining=amount,
        earned_at=entry.occurred_at,
        expires_at=expires_at,
        matures_at=pending_until,
        pending=pending_until is not None,
    )
    session.add(lot)
    session.flush()
    return lot


def spendable_lots(session: Session, member_id: uuid.UUID, now: datetime) -> list[rules.LotBalance]:
    """Her lots that may pay now: not expired and not pending (mature due lots first)."""
    rows = session.execute(
        select(PointsLot.id, PointsLot.remaining, PointsLot.expires_at, PointsLot.earned_at).where(
            PointsLot.member_id == member_id,
            PointsLot.remaining > 0,
            PointsLot.pending.is_(False),
            or_(PointsLot.expires_at.is_(None), PointsLot.expires_at > now),
        )
    )
    return [rules.LotBalance(r[0], r[1], r[2], r[3]) for r in rows]


def lot_of(session: Session, entry_id: uuid.UUID, now: datetime) -> rules.LotBalance | None:
    """The lot an earn entry made, as it stands (pending or not); None once it has expired."""
    row = session.execute(
        select(
            PointsLot.id,
            PointsLot.remaining,
            PointsLot.expires_at,
            PointsLot.earned_at,
            PointsLot.pending,
        ).where(
            PointsLot.entry_id == entry_id,
            or_(PointsLot.expires_at.is_(None), PointsLot.expires_at > now),
        )
    ).one_or_none()
    return None if row is None else rules.LotBalance(row[0], row[1], row[2], row[3], row[4])


def take(session: Session, entry: PointsEntry, plan: list[tuple[uuid.UUID, int]]) -> None:
    """Take the planned points out of their lots and record which lot paid how much."""
    for lot_id, points in plan:
        taken = session.execute(
            update(PointsLot)
            .where(PointsLot.id == lot_id, PointsLot.remaining >= points)
            .values(remaining=PointsLot.remaining - points)
        ).rowcount  # type: ignore[attr-defined]
        if taken != 1:
            raise RuntimeError(f"lot {lot_id} no longer holds {points} points")
        session.add(PointsLotUse(entry_id=entry.id, lot_id=lot_id, points=points))
    session.flush()
