"""One demo member's tier as ``loyalty.tiers`` keeps it: by the rolling year's spend, up at once
when she spends past the next tier, down only at the yearly review. The points ledger books the
spend and asks for the review; its earn multiplier follows the tier."""

from __future__ import annotations

import uuid
from datetime import datetime

from zhongtai.demo.catalog import Row
from zhongtai.loyalty.tier_rules import (
    DEFAULT_TIERS,
    RANK,
    REVIEW_PERIOD,
    Tier,
    TierStanding,
    next_standing,
)

#: The spend from which a member of each tier would move up (none above the top tier).
UPGRADE_FROM = {
    tier: min((DEFAULT_TIERS.spend_fen[t] for t in Tier if RANK[t] > RANK[tier]), default=None)
    for tier in Tier
}


class TierReview:
    """Her tier row (``None`` until her first review, at signup) and the spend it is reviewed
    on: money paid for completed orders, less what came back."""

    def __init__(self, member_id: uuid.UUID, rows: list[Row]) -> None:
        self.member_id = member_id
        #: Where her tier row goes when it is first set: every member's, for bulk insert.
        self.rows = rows
        self.row: Row | None = None
        self.spend: list[tuple[datetime, int]] = []

    def spent(self, at: datetime, fen: int) -> None:
        self.spend.append((at, fen))

    def review(self, at: datetime) -> None:
        """``review_tier``: her tier by the rolling year's spend, up at once, down at review."""
        spend = max(0, sum(fen for when, fen in self.spend if at - REVIEW_PERIOD < when <= at))
        row = self.row
        current = (
            TierStanding(row["tier"], row["review_at"])
            if row
            else TierStanding(Tier.STANDARD, at + REVIEW_PERIOD)
        )
        upgrade = UPGRADE_FROM[current.tier]
        if at < current.review_at and (upgrade is None or spend < upgrade):
            standing = current  # what next_standing answers, without its cost on every signup
        else:
            standing = next_standing(current, spend, at)
        if row is None:
            self.row = {
                "member_id": self.member_id,
                "tier": standing.tier,
                "since": at,
                "review_at": standing.review_at,
            }
            self.rows.append(self.row)
        elif standing != current:
            if standing.tier is not row["tier"]:
                row["since"] = at
            row.update(tier=standing.tier, review_at=standing.review_at)

    @property
    def review_at(self) -> datetime | None:
        return self.row["review_at"] if self.row else None

    @property
    def multiplier(self) -> int:
        tier = self.row["tier"] if self.row else Tier.STANDARD
        return DEFAULT_TIERS.earn_multiplier_pct[tier]
