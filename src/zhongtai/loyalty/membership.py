"""How points follow the member: moved to the survivor of a merge, included in her export."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.loyalty import rules
from zhongtai.loyalty.accounts import Source, book, ensure_account, move, spendable_lots, take
from zhongtai.loyalty.expiry import expire_due_lots
from zhongtai.loyalty.models import (
    Coupon,
    EntryKind,
    PointsAccount,
    PointsEntry,
    PointsLot,
    SourceType,
)
from zhongtai.loyalty.tiers import carry_tier_to_survivor
from zhongtai.members.hooks import export_section, merge_step


@merge_step("points")
def move_points_to_survivor(session: Session, merged_id: uuid.UUID, survivor_id: uuid.UUID) -> Any:
    """The merged member's lots move to the survivor; her balance, pending points and debt go
    with them as a merge_out / merge_in pair of entries, so each member's books still add up.
    The survivor's points then pay off any debt the two had between them."""
    # The merge holds both members' locks: their accounts cannot change under us.
    for member_id in sorted([merged_id, survivor_id]):
        ensure_account(session, member_id)
    held = session.get(PointsAccount, merged_id, populate_existing=True)
    assert held is not None
    balance, debt, pending = held.balance, held.debt, held.pending
    lots = session.execute(
        update(PointsLot).where(PointsLot.member_id == merged_id).values(member_id=survivor_id)
    ).rowcount  # type: ignore[attr-defined]
    tier = carry_tier_to_survivor(session, merged_id, survivor_id)
    coupons = session.execute(
        update(Coupon).where(Coupon.member_id == merged_id).values(member_id=survivor_id)
    ).rowcount  # type: ignore[attr-defined]
    if balance == 0 and debt == 0 and pending == 0:
        return {"lots": lots, "points": 0, "debt": 0, "tier": tier, "coupons": coupons}
    at = utcnow()
    source = Source(SourceType.MERGE, str(merged_id))
    out = move(session, merged_id, -balance, -debt, -pending)
    assert out is not None
    book(
        session,
        merged_id,
        EntryKind.MERGE_OUT,
        source,
        points=-balance,
        debt_change=-debt,
        pending_change=-pending,
        figures=out,
        at=at,
    )
    into = move(session, survivor_id, balance, debt, pending)
    assert into is not None
    book(
        session,
        survivor_id,
        EntryKind.MERGE_IN,
        source,
        points=balance,
        debt_change=debt,
        pending_change=pending,
        figures=into,
        at=at,
    )
    expire_due_lots(session, survivor_id, at)
    now_held = session.get(PointsAccount, survivor_id, populate_existing=True)
    assert now_held is not None
    _settle_between(session, survivor_id, now_held.balance, now_held.debt, source, at)
    moved = {"lots": lots, "points": balance, "debt": debt, "tier": tier, "coupons": coupons}
    # Pending points are named only when there were some (most merges have none).
    return moved | ({"pending": pending} if pending else {})


def _settle_between(
    session: Session,
    member_id: uuid.UUID,
    balance: int,
    debt: int,
    source: Source,
    at: datetime,
) -> None:
    """Her spendable points pay off her debt (pending points pay it when they mature)."""
    paid = min(balance, debt)
    if paid <= 0:
        return
    settled = move(session, member_id, -paid, -paid)
    assert settled is not None
    entry = book(
        session,
        member_id,
        EntryKind.SETTLE,
        source,
        points=-paid,
        debt_change=-paid,
        figures=settled,
        at=at,
    )
    take(session, entry, rules.plan_spending(spendable_lots(session, member_id, at), paid))


@export_section("points")
def export_points(session: Session, member_ids: list[uuid.UUID]) -> Any:
    accounts = session.scalars(select(PointsAccount).where(PointsAccount.member_id.in_(member_ids)))
    entries = session.scalars(
        select(PointsEntry)
        .where(PointsEntry.member_id.in_(member_ids))
        .order_by(PointsEntry.occurred_at, PointsEntry.id)
    )
    return {
        "accounts": [
            {
                "member_id": str(a.member_id),
                "balance": a.balance,
                "pending": a.pending,
                "debt": a.debt,
            }
            for a in accounts
        ],
        "entries": [
            {
                "kind": e.kind.value,
                "points": e.points,
                "debt_change": e.debt_change,
                "pending_change": e.pending_change,
                "source": f"{e.source_type.value}:{e.source_id}",
                "occurred_at": e.occurred_at.isoformat(),
                "reason": e.reason,
            }
            for e in entries
        ],
    }
