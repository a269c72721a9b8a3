"""Pure rules of HQ's points multipliers: which rules are valid, which campaign wins a sale,
and the record of what a sale earned at."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from zhongtai.loyalty.rules import PCT, Earning, SaleLine, multiplied_category

#: No multiplier above ×10: a typo such as 2000 for ×2 is refused, not paid out.
MAX_MULTIPLIER_PCT = 10 * PCT


class EarnRuleKind(StrEnum):
    #: Standing: a category and its subcategories earn at this rate.
    CATEGORY = "category"
    #: For a window, optionally in some channels or stores: the whole sale earns at this rate.
    CAMPAIGN = "campaign"


@dataclass(frozen=True)
class CategoryMultiplier:
    """HQ's rate for a category and everything below it (0 = the category earns nothing)."""

    rule_id: str
    name: str
    category_id: str
    multiplier_pct: int


@dataclass(frozen=True)
class CampaignMultiplier:
    """A campaign such as 积分翻倍 (200): from ``starts_at`` until ``ends_at`` (exclusive), in
    the listed channels and stores (empty: all of them)."""

    rule_id: str
    name: str
    multiplier_pct: int
    starts_at: datetime
    ends_at: datetime
    channels: frozenset[str] = frozenset()
    store_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EarnRuleDraft:
    """What HQ asks for, before it is stored: checked by :func:`earn_rule_problems`."""

    kind: EarnRuleKind
    name: str
    multiplier_pct: int
    category_id: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    channels: frozenset[str] = frozenset()
    store_ids: frozenset[str] = frozenset()


def earn_rule_problems(draft: EarnRuleDraft, now: datetime) -> list[tuple[str, str]]:
    """(field, message) for each thing wrong with a rule; empty when it may be stored.

    A category rule names its category and nothing of a campaign; a campaign has a window that
    has not ended, applies to no single category, and raises points (above 100%).
    """
    problems: list[tuple[str, str]] = []
    if not draft.name.strip():
        problems.append(("name", "must say what the rule is for"))
    if draft.kind is EarnRuleKind.CATEGORY:
        if draft.category_id is None:
            problems.append(("category_id", "a category rule names its category"))
        if not 0 <= draft.multiplier_pct <= MAX_MULTIPLIER_PCT:
            problems.append(
                ("multiplier_pct", f"from 0 (earns nothing) to {MAX_MULTIPLIER_PCT} (×10)")
            )
        for name, value in (
            ("starts_at", draft.starts_at),
            ("ends_at", draft.ends_at),
            ("channels", draft.channels or None),
            ("store_ids", draft.store_ids or None),
        ):
            if value is not None:
                problems.append((name, "only campaigns have a window, channels or stores"))
        return problems
    if draft.category_id is not None:
        problems.append(("category_id", "a campaign applies to the whole sale, not a category"))
    if not PCT < draft.multiplier_pct <= MAX_MULTIPLIER_PCT:
        problems.append(
            ("multiplier_pct", f"a campaign raises points: {PCT + 1} to {MAX_MULTIPLIER_PCT}")
        )
    if draft.starts_at is None:
        problems.append(("starts_at", "a campaign starts at a set moment"))
    if draft.ends_at is None:
        problems.append(("ends_at", "a campaign ends at a set moment"))
    elif draft.ends_at <= now:
        problems.append(("ends_at", "is already past"))
    if draft.starts_at and draft.ends_at and draft.ends_at <= draft.starts_at:
        problems.append(("ends_at", "must be after starts_at"))
    return problems


def campaign_applies(
    campaign: CampaignMultiplier, at: datetime, channel: str | None, store_id: str | None
) -> bool:
    """A sale made at ``at`` in this channel and store is in the campaign. A sale whose channel
    or store is unknown only meets campaigns without that restriction."""
    if not campaign.starts_at <= at < campaign.ends_at:
        return False
    if campaign.channels and channel not in campaign.channels:
        return False
    return not campaign.store_ids or store_id in campaign.store_ids


def winning_campaign(
    campaigns: Sequence[CampaignMultiplier], at: datetime, channel: str | None, store_id: str | None
) -> CampaignMultiplier | None:
    """The one campaign a sale earns at: campaigns never stack, the highest multiplier wins
    (a ×3 store opening beats a chain-wide ×2); between equals, the one created first."""
    matching = [c for c in campaigns if campaign_applies(c, at, channel, store_id)]
    return min(matching, key=lambda c: (-c.multiplier_pct, c.rule_id), default=None)


def category_rates(rules: Sequence[CategoryMultiplier]) -> dict[str, CategoryMultiplier]:
    """HQ's category rules by category (one live rule per category)."""
    return {rule.category_id: rule for rule in rules}


def applied_multipliers(
    lines: Sequence[SaleLine],
    earning: Earning,
    *,
    points_per_yuan: int,
    tier: str,
    tier_multiplier_pct: int,
    categories: Mapping[str, CategoryMultiplier],
    campaign: CampaignMultiplier | None,
) -> dict[str, Any]:
    """What a sale earned at, for her history: the base rate, her tier's multiplier, the
    campaign's (if one applied) and each category rule with the amount it applied to. Lines
    without a category rule earned at 100% and are counted in ``eligible_fen`` only."""
    by_rule: dict[str, int] = {}
    for line, eligible in zip(lines, earning.eligible_fen, strict=True):
        category = multiplied_category(line, categories)
        if category is not None:
            by_rule[category] = by_rule.get(category, 0) + eligible
    return {
        "points_per_yuan": points_per_yuan,
        "eligible_fen": sum(earning.eligible_fen),
        "tier": {"tier": tier, "multiplier_pct": tier_multiplier_pct},
        "campaign": None
        if campaign is None
        else {
            "rule_id": campaign.rule_id,
            "name": campaign.name,
            "multiplier_pct": campaign.multiplier_pct,
        },
        "categories": [
            {
                "rule_id": categories[category].rule_id,
                "name": categories[category].name,
                "category_id": category,
                "multiplier_pct": categories[category].multiplier_pct,
                "eligible_fen": amount,
            }
            for category, amount in sorted(by_rule.items())
        ],
    }
