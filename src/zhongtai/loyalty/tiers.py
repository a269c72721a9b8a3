"""Members' tiers: by rolling 12-month spend, up at once, down only at the review date."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from zhongtai.core.outbox import record_event
from zhongtai.loyalty.events import TierChanged
from zhongtai.loyalty.models import EntryKind, MemberTier, PointsEntry
from zhongtai.loyalty.tier_rules import (
    DEFAULT_TIERS,
    RANK,
    REVIEW_PERIOD,
    Tier,
    TierPolicy,
    TierStanding,
    next_standing,
)
from zhongtai.members import service as members


def rolling_spend(session: Session, member_id: uuid.UUID, at: datetime) -> int:
    """Net spend of the 12 months before ``at``: sales that earned points, less returns."""
    signed = case(
        (PointsEntry.kind == EntryKind.EARN, PointsEntry.amount_fen),
        else_=-PointsEntry.amount_fen,
    )
    value = session.scalar(
        select(func.coalesce(func.sum(signed), 0)).where(
            PointsEntry.member_id.in_(members.member_ids_of(session, member_id)),
            PointsEntry.kind.in_([EntryKind.EARN, EntryKind.REVERSE]),
            PointsEntry.occurred_at > at - REVIEW_PERIOD,
            PointsEntry.occurred_at <= at,
        )
    )
    return max(0, int(value or 0))


def current_tier(session: Session, member_id: uuid.UUID) -> Tier:
    row = session.get(MemberTier, member_id, populate_existing=True)
    return row.tier if row else Tier.STANDARD


def review_tier(
    session: Session, member_id: uuid.UUID, at: datetime, policy: TierPolicy = DEFAULT_TIERS
) -> TierStanding:
    """Apply the tier rules to her spend as of ``at``; the caller holds the member's lock."""
    row = session.get(MemberTier, member_id, populate_existing=True)
    current = (
        TierStanding(row.tier, row.review_at)
        if row
        else TierStanding(Tier.STANDARD, at + REVIEW_PERIOD)
    )
    spend = rolling_spend(session, member_id, at)
    standing = next_standing(current, spend, at, policy)
    if row is None:
        row = MemberTier(
            member_id=member_id, tier=standing.tier, since=at, review_at=standing.review_at
        )
        session.add(row)
    elif standing != current:
        if standing.tier != row.tier:
            row.since = at
        row.tier, row.review_at = standing.tier, standing.review_at
    session.flush()
    if standing.tier != current.tier:
        record_event(
            session,
            TierChanged(
                member_id=member_id,
                previous=current.tier.value,
                tier=standing.tier.value,
                review_at=standing.review_at,
                rolling_spend_fen=spend,
            ),
            aggregate_type="member",
            aggregate_id=member_id,
        )
    return standing


def review_due_tiers(session: Session, at: datetime, *, limit: int = 1000) -> int:
    """The scheduled job: review every member whose review date has come (downgrades)."""
    due = list(
        session.scalars(
            select(MemberTier.member_id)
            .where(MemberTier.review_at <= at)
            .order_by(MemberTier.member_id)
            .limit(limit)
        )
    )
    for member_id in due:
        locked = members.lock_member(session, member_id, allow_erased=True)
        review_tier(session, locked.id, at)
    return len(due)


def carry_tier_to_survivor(session: Session, merged_id: uuid.UUID, survivor_id: uuid.UUID) -> str:
    """On a merge the survivor keeps the higher of the two tiers (and its review date)."""
    merged = session.get(MemberTier, merged_id, populate_existing=True)
    survivor = session.get(MemberTier, survivor_id, populate_existing=True)
    if merged is None:
        return survivor.tier.value if survivor else Tier.STANDARD.value
    if survivor is None:
        session.add(
            MemberTier(
                member_id=survivor_id,
                tier=merged.tier,
                since=merged.since,
                review_at=merged.review_at,
            )
        )
        return merged.tier.value
    if RANK[merged.tier] > RANK[survivor.tier]:
        survivor.tier, survivor.since, survivor.review_at = (
            merged.tier,
            merged.since,
            merged.review_at,
        )
    return survivor.tier.value
