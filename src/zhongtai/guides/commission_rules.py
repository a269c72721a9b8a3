"""Pure commission rules of shopping guides: which rule pays a line, what it earns, the monthly
target bonus and what a return takes back."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

BP = 10_000  # basis points: 10000 = 100 %
PCT = 100  # target attainment and multipliers are integer percentages: 130 = ×1.3


class CommissionBasis(StrEnum):
    PERCENT = "percent"  # rate_bp basis points of the line's net paid amount
    PER_ITEM = "per_item"  # amount_per_item fen for each item sold


@dataclass(frozen=True)
class CommissionRule:
    """How much a guide earns on the lines it applies to.

    Each of ``category_id``, ``store_id`` and ``guide_level`` left None matches any line; a rule
    that sets one only matches lines with that value (the category anywhere in the SKU's
    lineage, so a rule on 饮料 also pays for 果汁 under it). A zero rate is a valid rule: it is
    how a category is taken out of commission under a broader paying rule.
    """

    rule_id: uuid.UUID
    basis: CommissionBasis
    rate_bp: int = 0
    amount_per_item: int = 0
    category_id: uuid.UUID | None = None
    store_id: uuid.UUID | None = None
    guide_level: str | None = None
    priority: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.rate_bp <= BP:
            raise ValueError(f"rate_bp must be between 0 and {BP}, got {self.rate_bp}")
        if self.amount_per_item < 0:
            raise ValueError(f"amount_per_item must not be negative, got {self.amount_per_item}")

    @property
    def dimensions(self) -> int:
        """How many of category, store and guide level the rule is limited to."""
        return sum(d is not None for d in (self.category_id, self.store_id, self.guide_level))


@dataclass(frozen=True)
class CommissionLine:
    """One order line attributed to a guide, as commission sees it."""

    line_id: uuid.UUID
    #: The SKU's category first, then its ancestors up to the root.
    category_lineage: tuple[uuid.UUID, ...]
    #: The guide's store the sale is credited to (not necessarily the store that shipped it).
    store_id: uuid.UUID
    guide_level: str
    net_amount: int
    items: int

    def __post_init__(self) -> None:
        if self.net_amount < 0 or self.items < 0:
            raise ValueError("a line's net amount and item count are never negative")


def matches(rule: CommissionRule, line: CommissionLine) -> bool:
    """Whether every dimension the rule sets matches the line."""
    return (
        (rule.category_id is None or rule.category_id in line.category_lineage)
        and (rule.store_id is None or rule.store_id == line.store_id)
        and (rule.guide_level is None or rule.guide_level == line.guide_level)
    )


def _specificity(rule: CommissionRule, line: CommissionLine) -> tuple[int, int, int, uuid.UUID]:
    # A rule without a category ranks behind one on the root category: among rules limited to
    # as many dimensions, the one that names what was sold says more about this line.
    depth = (
        len(line.category_lineage)
        if rule.category_id is None
        else line.category_lineage.index(rule.category_id)
    )
    return (-rule.dimensions, depth, -rule.priority, rule.rule_id)


def choose_rule(rules: Sequence[CommissionRule], line: CommissionLine) -> CommissionRule | None:
    """The most specific rule matching the line, or None when none matches.

    More dimensions set wins; then the category nearer the SKU (a rule without a category comes
    after every category rule); then the higher priority; then the smallest rule_id, so the
    same rules always give the same answer whatever order they are listed in.
    """
    matching = [rule for rule in rules if matches(rule, line)]
    if not matching:
        return None
    return min(matching, key=lambda rule: _specificity(rule, line))


def _ratio_half_up(amount: int, numerator: int, denominator: int) -> int:
    """``amount × numerator / denominator`` rounded half up, in integers (all non-negative)."""
    return (2 * amount * numerator + denominator) // (2 * denominator)


def commission_for_line(rule: CommissionRule, line: CommissionLine) -> int:
    """Fen the rule pays on the line: a percentage of the net amount rounded half up, or a fixed
    amount per item capped at the net amount (a guide never earns more than the customer paid,
    which matters for free gifts and deep markdowns)."""
    if rule.basis is CommissionBasis.PERCENT:
        earned = _ratio_half_up(line.net_amount, rule.rate_bp, BP)
    else:
        earned = line.items * rule.amount_per_item
    return max(0, min(earned, line.net_amount))


@dataclass(frozen=True)
class TargetTier:
    #: The monthly target attainment (percent, floored) from which the tier is reached.
    attainment_pct: int
    #: What the month's base commission is worth at this tier: 130 pays a 30 % bonus.
    multiplier_pct: int


DEFAULT_TARGET_TIERS: tuple[TargetTier, ...] = (
    TargetTier(attainment_pct=0, multiplier_pct=100),
    TargetTier(attainment_pct=80, multiplier_pct=110),
    TargetTier(attainment_pct=100, multiplier_pct=130),
    TargetTier(attainment_pct=120, multiplier_pct=150),
)

#: The tier of a month with no target, or below the lowest configured tier: commission as earned.
BASE_TIER = TargetTier(attainment_pct=0, multiplier_pct=PCT)


@dataclass(frozen=True)
class TierOutcome:
    attainment_pct: int
    tier: TargetTier
    bonus: int


def validate_target_tiers(tiers: Sequence[TargetTier]) -> None:
    """Refuse tiers that are not strictly ascending by attainment or have a negative number."""
    for tier in tiers:
        if tier.attainment_pct < 0 or tier.multiplier_pct < 0:
            raise ValueError(f"a target tier has no negative numbers: {tier}")
    for lower, higher in itertools.pairwise(tiers):
        if lower.attainment_pct >= higher.attainment_pct:
            raise ValueError(
                "target tiers must be sorted by attainment with no attainment twice: "
                f"{lower.attainment_pct} then {higher.attainment_pct}"
            )


def monthly_tier_bonus(
    sales: int, target: int, base_commission: int, tiers: Sequence[TargetTier]
) -> TierOutcome:
    """The month's target attainment, the tier it reaches and the bonus on the base commission.

    Attainment is ``floor(sales × 100 / target)``; a month whose returns outweighed its sales
    attained 0 %. The tier is the highest one reached (``BASE_TIER`` below the lowest one, and
    when there is no target, i.e. ``target <= 0``). The bonus is the multiplier's part above
    100 % of the base commission, rounded half up; a multiplier below 100 % pays no bonus and
    takes nothing back, since commission already earned is never clawed back for a missed target.
    """
    validate_target_tiers(tiers)
    if target <= 0:
        return TierOutcome(attainment_pct=0, tier=BASE_TIER, bonus=0)
    attainment = max(0, sales) * PCT // target
    reached = [tier for tier in tiers if tier.attainment_pct <= attainment]
    tier = reached[-1] if reached else BASE_TIER
    uplift = tier.multiplier_pct - PCT
    if uplift <= 0 or base_commission <= 0:
        return TierOutcome(attainment_pct=attainment, tier=tier, bonus=0)
    return TierOutcome(
        attainment_pct=attainment, tier=tier, bonus=_ratio_half_up(base_commission, uplift, PCT)
    )


def reversal_for_return(
    commission: int, line_net: int, refunded_before: int, refunded_now: int
) -> int:
    """Fen of a line's commission taken back when ``refunded_now`` more of it is refunded.

    Counted cumulatively: ``share(before + now) - share(before)`` with
    ``share(k) = commission × min(k, line_net) / line_net`` rounded half up. Any sequence of
    partial refunds therefore takes back at most the commission, and exactly the commission once
    the whole line is refunded, whatever the split; refunds beyond the line's net take nothing
    more. A line with no net amount earned nothing and gives nothing back.
    """
    if min(commission, line_net, refunded_before, refunded_now) < 0:
        raise ValueError("commission, line net and refunded amounts are never negative")
    if line_net == 0 or commission == 0:
        return 0
    before = min(line_net, refunded_before)
    after = min(line_net, refunded_before + refunded_now)
    return _ratio_half_up(commission, after, line_net) - _ratio_half_up(
        commission, before, line_net
    )
