"""Pure tier rules: which tier a rolling year's spend earns, when a member moves up or down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

REVIEW_PERIOD = timedelta(days=365)


class Tier(StrEnum):
    STANDARD = "standard"  # 普通
    SILVER = "silver"  # 银卡
    GOLD = "gold"  # 金卡
    BLACK = "black"  # 黑金


RANK = {tier: i for i, tier in enumerate(Tier)}


@dataclass(frozen=True)
class TierPolicy:
    #: Spend in the rolling 12 months (fen) from which each tier is reached.
    spend_fen: Mapping[Tier, int] = field(
        default_factory=lambda: {
            Tier.STANDARD: 0,
            Tier.SILVER: 200_000,
            Tier.GOLD: 800_000,
            Tier.BLACK: 3_000_000,
        }
    )
    #: Points multiplier of each tier, in percent.
    earn_multiplier_pct: Mapping[Tier, int] = field(
        default_factory=lambda: {
            Tier.STANDARD: 100,
            Tier.SILVER: 120,
            Tier.GOLD: 150,
            Tier.BLACK: 200,
        }
    )


DEFAULT_TIERS = TierPolicy()


def tier_for_spend(spend_fen: int, policy: TierPolicy = DEFAULT_TIERS) -> Tier:
    """The highest tier whose threshold the spend reaches."""
    reached = [t for t in Tier if spend_fen >= policy.spend_fen.get(t, 0)]
    return max(reached, key=RANK.__getitem__, default=Tier.STANDARD)


@dataclass(frozen=True)
class TierStanding:
    tier: Tier
    review_at: datetime


def next_standing(
    current: TierStanding, spend_fen: int, at: datetime, policy: TierPolicy = DEFAULT_TIERS
) -> TierStanding:
    """Up at once when the spend earns a higher tier (with a full year before review); down
    only at the review date, to what the year's spend earns; otherwise unchanged."""
    earned = tier_for_spend(spend_fen, policy)
    if RANK[earned] > RANK[current.tier]:
        return TierStanding(earned, at + REVIEW_PERIOD)
    if at >= current.review_at:
        return TierStanding(earned, at + REVIEW_PERIOD)
    return current
