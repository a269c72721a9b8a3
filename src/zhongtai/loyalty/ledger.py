"""Earning, redeeming, reversing and adjusting points: each exactly once, never below zero."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.outbox import record_event
from zhongtai.loyalty import rules
from zhongtai.loyalty.accounts import (
    Booked,
    Source,
    book,
    lock_account,
    lot_of,
    move,
    new_lot,
    recorded,
    spendable_lots,
    take,
)
from zhongtai.loyalty.errors import InsufficientPoints, SourceAlreadyRecorded
from zhongtai.loyalty.events import PointsAdjusted, PointsEarned, PointsRedeemed, PointsReversed
from zhongtai.loyalty.expiry import expire_due_lots
from zhongtai.loyalty.models import EntryKind, PointsEntry, SourceType
from zhongtai.loyalty.tiers import review_tier
from zhongtai.members import service as members
from zhongtai.members.models import MemberStatus

DEFAULT_VALIDITY = timedelta(days=365)
#: The most one correction by hand may move (as a redemption may spend): far above any real
#: correction, and far inside the 32-bit points columns of PostgreSQL.
MAX_ADJUST_POINTS = 100_000_000


def _replay(existing: PointsEntry, source: Source, recorded: int, requested: int) -> Booked:
    """The first booking of a source, when the replay asks for the same; else 409."""
    if recorded != requested:
        raise SourceAlreadyRecorded(
            source=str(source), kind=existing.kind.value, recorded=recorded, requested=requested
        )
    return Booked(existing, replayed=True)


def _credit(
    session: Session,
    member_id: uuid.UUID,
    kind: EntryKind,
    source: Source,
    points: int,
    *,
    at: datetime,
    expires_at: datetime | None,
    amount_fen: int | None = None,
    store_id: uuid.UUID | None = None,
    reason: str | None = None,
    pending_until: datetime | None = None,
    multipliers: dict[str, Any] | None = None,
) -> tuple[PointsEntry, int]:
    """Add points as a new lot, then let them pay off any debt first. (entry, debt paid).

    With ``pending_until`` the points are pending instead: they count in the account's
    ``pending`` until they mature, and pay off debt only then.
    """
    pending = pending_until is not None and points > 0
    if pending:
        figures = move(session, member_id, 0, pending=points)
    else:
        figures = move(session, member_id, points)
    assert figures is not None
    entry = book(
        session,
        member_id,
        kind,
        source,
        points=0 if pending else points,
        pending_change=points if pending else 0,
        figures=figures,
        at=at,
        amount_fen=amount_fen,
        store_id=store_id,
        reason=reason,
        matures_at=pending_until if pending else None,
        multipliers=multipliers,
    )
    if points == 0:
        return entry, 0
    lot = new_lot(session, member_id, entry, points, expires_at, pending_until=entry.matures_at)
    paid = 0 if pending else min(figures[1], points)
    if paid > 0:
        settled = move(session, member_id, -paid, -paid)
        assert settled is not None
        settle = book(
            session,
            member_id,
            EntryKind.SETTLE,
            source,
            points=-paid,
            debt_change=-paid,
            figures=settled,
            at=at,
            store_id=store_id,
        )
        take(session, settle, [(lot.id, paid)])
    return entry, paid


def earn_points(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    points: int,
    *,
    basis_fen: int | None = None,
    store_id: uuid.UUID | None = None,
    at: datetime | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
    pending_until: datetime | None = None,
    multipliers: dict[str, Any] | None = None,
) -> Booked:
    """Credit a sale's (or campaign's) points once: a replay of the same source answers the
    first booking and changes nothing; the same source with other points answers 409.

    With ``pending_until`` later than ``at`` (a sale's return window) the points are pending
    until then: not spendable, and their validity counts from that moment.
    """
    if points < 0:
        raise InvalidInput.field("points", "must be 0 or more")
    at = at or utcnow()
    member = lock_account(session, member_id)
    existing = recorded(session, member, source, EntryKind.EARN)
    if existing is not None:
        if basis_fen is not None:
            # A sale is known by its amount: its points may differ on replay (her tier moved).
            return _replay(existing, source, existing.amount_fen or 0, basis_fen)
        return _replay(existing, source, existing.points_earned, points)
    if pending_until is not None and pending_until <= at:
        pending_until = None  # its window has already passed: spendable at once
    entry, paid = _credit(
        session,
        member,
        EntryKind.EARN,
        source,
        points,
        at=at,
        expires_at=(pending_until or at) + valid_for,
        amount_fen=basis_fen,
        store_id=store_id,
        pending_until=pending_until,
        multipliers=multipliers,
    )
    _announce(
        session,
        entry,
        PointsEarned,
        points=points,
        debt_paid=paid,
        matures_at=entry.matures_at,
    )
    review_tier(session, member, at)
    return Booked(entry, replayed=False)


def give_back_points(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    points: int,
    *,
    store_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> Booked | None:
    """Credit points a refund gives back (points she paid with), once per source, as
    :func:`earn_points` does. None when she was erased: her account takes nothing any more, so
    the points are forfeited, nothing is booked and the caller records why.

    Decided under her lock, so an erasure racing the refund lands before it (forfeited) or
    after it (credited, and kept with her pseudonymous books).
    """
    member = members.lock_member(session, member_id, allow_erased=True)
    if member.status is MemberStatus.ERASED:
        return None
    return earn_points(session, member.id, source, points, store_id=store_id, at=at)


def _debit(
    session: Session,
    member_id: uuid.UUID,
    kind: EntryKind,
    source: Source,
    points: int,
    *,
    at: datetime,
    store_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> PointsEntry:
    expire_due_lots(session, member_id, at)
    figures = move(session, member_id, -points)
    if figures is None:
        balance = sum(lot.remaining for lot in spendable_lots(session, member_id, at))
        raise InsufficientPoints(requested=points, available=balance)
    entry = book(
        session,
        member_id,
        kind,
        source,
        points=-points,
        figures=figures,
        at=at,
        store_id=store_id,
        reason=reason,
    )
    plan = rules.plan_spending(spendable_lots(session, member_id, at), points)
    take(session, entry, plan)
    return entry


def redeem_points(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    points: int,
    *,
    store_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> Booked:
    """Spend points once for a source (an order, a POS sale), nearest-expiry lots first.

    The balance check is the conditional update itself: two touchpoints spending the same
    points at once queue on the member's lock, and the second finds the balance short (409
    ``insufficient-points``). Nothing is booked when it is refused.
    """
    if points <= 0:
        raise InvalidInput.field("points", "must be 1 or more")
    at = at or utcnow()
    member = lock_account(session, member_id)
    existing = recorded(session, member, source, EntryKind.REDEEM)
    if existing is not None:
        return _replay(existing, source, existing.points, -points)
    with session.begin_nested():
        entry = _debit(session, member, EntryKind.REDEEM, source, points, at=at, store_id=store_id)
    _announce(session, entry, PointsRedeemed)
    return Booked(entry, replayed=False)


def reverse_points(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    *,
    earned_by: Source,
    returned_fen: int,
    store_id: uuid.UUID | None = None,
    at: datetime | None = None,
    clip: bool = False,
) -> Booked:
    """Take back the points of returned goods, in proportion to the amount returned.

    Points still held go first: the sale's own lot (pending, inside its return window, or
    spendable), then her other spendable lots nearest expiry; what was already spent becomes
    debt that later earnings pay off. The balance never goes negative.
    More than is left of the sale is 422, or with ``clip`` counts as what is left (a refund
    may include money points were never earned on, such as a delivery fee).
    """
    if returned_fen <= 0:
        raise InvalidInput.field("returned_fen", "must be 1 fen or more")
    at = at or utcnow()
    member = lock_account(session, member_id, allow_erased=True)
    existing = recorded(session, member, source, EntryKind.REVERSE)
    if existing is not None and clip:
        return Booked(existing, replayed=True)
    if existing is not None:
        return _replay(existing, source, existing.amount_fen or 0, returned_fen)
    earn = recorded(session, member, earned_by, EntryKind.EARN)
    if earn is None:
        raise NotFound(f"No points were earned by {earned_by}.", source=str(earned_by))
    basis = earn.amount_fen or 0
    before = int(
        session.scalar(
            select(func.coalesce(func.sum(PointsEntry.amount_fen), 0)).where(
                PointsEntry.related_entry_id == earn.id, PointsEntry.kind == EntryKind.REVERSE
            )
        )
        or 0
    )
    if clip:
        returned_fen = max(0, min(returned_fen, basis - before))
    if before + returned_fen > basis:
        raise InvalidInput.field(
            "returned_fen",
            f"exceeds what is left to return of the sale ({basis - before} fen)",
        )
    due = rules.reversal_points(earn.points_earned, basis, before, returned_fen)
    expire_due_lots(session, member, at)
    plan = rules.plan_reversal(
        due, lot_of(session, earn.id, at), spendable_lots(session, member, at)
    )
    figures = move(session, member, -plan.from_balance, plan.debt, -plan.from_pending)
    assert figures is not None
    entry = book(
        session,
        member,
        EntryKind.REVERSE,
        source,
        points=-plan.from_balance,
        debt_change=plan.debt,
        pending_change=-plan.from_pending,
        figures=figures,
        at=at,
        amount_fen=returned_fen,
        related_entry_id=earn.id,
        store_id=store_id,
    )
    take(session, entry, plan.lots)
    _announce(
        session,
        entry,
        PointsReversed,
        points=-(plan.from_balance + plan.from_pending),
        debt_added=plan.debt,
        pending_taken=plan.from_pending,
    )
    return Booked(entry, replayed=False)


def adjust_points(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    points: int,
    *,
    reason: str,
    at: datetime | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
) -> Booked:
    """HQ's correction by hand, with a reason: a credit makes a lot, a debit spends like a
    redemption and is refused beyond the balance."""
    if points == 0:
        raise InvalidInput.field("points", "must not be 0")
    if abs(points) > MAX_ADJUST_POINTS:
        raise InvalidInput.field("points", f"at most {MAX_ADJUST_POINTS} either way")
    if not reason.strip():
        raise InvalidInput.field("reason", "must say why the points are corrected")
    at = at or utcnow()
    member = lock_account(session, member_id, allow_erased=True)
    existing = recorded(session, member, source, EntryKind.ADJUST)
    if existing is not None:
        return _replay(existing, source, existing.points, points)
    if points > 0:
        entry, _ = _credit(
            session,
            member,
            EntryKind.ADJUST,
            source,
            points,
            at=at,
            expires_at=at + valid_for,
            reason=reason,
        )
    else:
        with session.begin_nested():
            entry = _debit(session, member, EntryKind.ADJUST, source, -points, at=at, reason=reason)
    record_audit(
        session,
        "points.adjusted",
        "member",
        member,
        {"balance": entry.balance_after - entry.points},
        {
            "balance": entry.balance_after,
            "points": entry.points,
            "reason": reason,
            "reference": source.id,
        },
    )
    _announce(session, entry, PointsAdjusted, reason=reason)
    return Booked(entry, replayed=False)


def _announce(
    session: Session, entry: PointsEntry, event: type, *, points: int | None = None, **extra: object
) -> None:
    """The entry's event; ``points`` when it says more than the balance change (an earning
    that is pending, a return that took pending points)."""
    record_event(
        session,
        event(
            member_id=entry.member_id,
            entry_id=entry.id,
            points=entry.points if points is None else points,
            balance=entry.balance_after,
            debt=entry.debt_after,
            pending=entry.pending_after,
            source_type=entry.source_type.value,
            source_id=entry.source_id,
            **extra,
        ),
        aggregate_type="member",
        aggregate_id=entry.member_id,
        store_id=entry.store_id,
    )


__all__ = [
    "SourceType",
    "adjust_points",
    "earn_points",
    "give_back_points",
    "redeem_points",
    "reverse_points",
]
