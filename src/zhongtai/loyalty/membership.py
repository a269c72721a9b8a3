"""How points and coupons follow the member: moved to the survivor of a merge, included in her
export, and summed up in her overview (the member 360)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.money import yuan
from zhongtai.loyalty import rules
from zhongtai.loyalty.accounts import Source, book, ensure_account, move, spendable_lots, take
from zhongtai.loyalty.coupon_rules import CouponKind
from zhongtai.loyalty.expiry import expire_due_lots
from zhongtai.loyalty.models import (
    Coupon,
    CouponStatus,
    CouponTemplate,
    EntryKind,
    PointsAccount,
    PointsEntry,
    PointsLot,
    SourceType,
)
from zhongtai.loyalty.queries import points_balance
from zhongtai.loyalty.tiers import carry_tier_to_survivor
from zhongtai.members.hooks import export_section, merge_step, overview_section

#: How far ahead the overview warns of expiring points (the guide's nudge: "use them or lose
#: them").
EXPIRY_HORIZON = timedelta(days=30)


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


@overview_section("points")
def points_overview(session: Session, member_ids: list[uuid.UUID], now: datetime) -> Any:
    """Her points as the till and the app show them (balance, pending, debt: the ledger moved
    them to the survivor at each merge), her tier and when it is next reviewed, and what
    expires within 30 days. A fixed handful of statements."""
    held = points_balance(session, member_ids[0], now, expiring_within=EXPIRY_HORIZON)
    return {
        "balance": held.balance,
        "pending": held.pending,
        "debt": held.debt,
        "tier": held.tier.value,
        "tier_review_at": held.tier_review_at,
        "expiring_30d": sum(e.points for e in held.expiring),
        "expiring": [{"expires_at": e.expires_at, "points": e.points} for e in held.expiring],
    }


def _yuan(fen: int) -> str:
    return yuan(fen, whole_if_round=True)


def coupon_value_summary(
    kind: CouponKind, value: int, threshold_fen: int, cap_fen: int | None
) -> str:
    """What a coupon gives, in one line a clerk or a guide can read out: "¥20 off from ¥199",
    "15% off (at most ¥30)", "one item for ¥9.90", "free delivery", "a free gift from ¥99"."""
    if kind is CouponKind.AMOUNT_OFF:
        text = f"{_yuan(value)} off"
    elif kind is CouponKind.PERCENT_OFF:
        text = f"{value}% off" + (f" (at most {_yuan(cap_fen)})" if cap_fen is not None else "")
    elif kind is CouponKind.FIXED_PRICE:
        text = f"one item for {_yuan(value)}"
    elif kind is CouponKind.FREE_DELIVERY:
        text = "free delivery"
    else:
        text = "a free gift"
    return text + (f" from {_yuan(threshold_fen)}" if threshold_fen > 0 else "")


@overview_section("coupons")
def coupons_overview(session: Session, member_ids: list[uuid.UUID], now: datetime) -> Any:
    """Her coupons she can still use (soonest to expire first), and how many she used or let
    expire. Two statements, however many coupons she holds."""
    redeemed = Coupon.status == CouponStatus.REDEEMED
    used, expired = session.execute(
        select(
            func.count(case((redeemed, 1))),
            func.count(case((~redeemed & (Coupon.expires_at <= now), 1))),
        ).where(Coupon.member_id.in_(member_ids))
    ).one()
    active = session.execute(
        select(
            Coupon.id,
            Coupon.status,
            Coupon.locked_until,
            Coupon.starts_at,
            Coupon.expires_at,
            CouponTemplate.name,
            CouponTemplate.kind,
            CouponTemplate.value,
            CouponTemplate.threshold_fen,
            CouponTemplate.cap_fen,
        )
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.member_id.in_(member_ids), ~redeemed, Coupon.expires_at > now)
        .order_by(Coupon.expires_at, Coupon.id)
    ).all()
    return {
        "active": [
            {
                "coupon_id": c.id,
                "template_name": c.name,
                "kind": c.kind.value,
                "value_summary": coupon_value_summary(c.kind, c.value, c.threshold_fen, c.cap_fen),
                # A checkout's lock that ran out frees the coupon again: only a live one counts.
                "held_by_checkout": c.status is CouponStatus.LOCKED
                and c.locked_until is not None
                and c.locked_until > now,
                "valid_from": c.starts_at,
                "valid_until": c.expires_at,
            }
            for c in active
        ],
        "used": int(used),
        "expired": int(expired),
    }
