"""Guide commission rules: which rule pays a line, what it earns, target bonus, return reversal."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.guides.commission_rules import (
    BASE_TIER,
    DEFAULT_TARGET_TIERS,
    CommissionBasis,
    CommissionLine,
    CommissionRule,
    TargetTier,
    TierOutcome,
    choose_rule,
    commission_for_line,
    matches,
    monthly_tier_bonus,
    reversal_for_return,
)

JUICE, DRINKS, FOOD = (uuid.UUID(int=n) for n in (3, 2, 1))  # 果汁 ⊂ 饮料 ⊂ 食品
WINE = uuid.UUID(int=4)
SH001, SH002 = uuid.UUID(int=101), uuid.UUID(int=102)


def rule(n: int, **kw: Any) -> CommissionRule:
    kw.setdefault("basis", CommissionBasis.PERCENT)
    return CommissionRule(rule_id=uuid.UUID(int=n), **kw)


def juice_line(net: int = 10_000, items: int = 2, level: str = "senior") -> CommissionLine:
    return CommissionLine(
        line_id=uuid.uuid4(),
        category_lineage=(JUICE, DRINKS, FOOD),
        store_id=SH001,
        guide_level=level,
        net_amount=net,
        items=items,
    )


# --- choosing the rule -----------------------------------------------------------------------


def test_a_rule_on_the_category_nearer_the_sku_wins_over_one_on_its_parent() -> None:
    on_food, on_juice = rule(1, category_id=FOOD), rule(2, category_id=JUICE)
    on_drinks = rule(3, category_id=DRINKS, priority=9)
    assert choose_rule([on_food, on_drinks, on_juice], juice_line()) == on_juice


def test_a_rule_limited_to_more_dimensions_wins_even_on_a_broader_category() -> None:
    juice_anywhere = rule(1, category_id=JUICE, priority=99)
    food_in_sh001 = rule(2, category_id=FOOD, store_id=SH001)
    assert choose_rule([juice_anywhere, food_in_sh001], juice_line()) == food_in_sh001


def test_a_category_rule_wins_over_a_store_rule_limited_to_as_many_dimensions() -> None:
    store_wide = rule(1, store_id=SH001, priority=50)
    on_food = rule(2, category_id=FOOD)
    assert choose_rule([store_wide, on_food], juice_line()) == on_food


def test_priority_decides_between_equally_specific_rules_then_the_smallest_id() -> None:
    low, high = rule(1, store_id=SH001, priority=1), rule(2, store_id=SH001, priority=5)
    assert choose_rule([low, high], juice_line()) == high
    first, second = rule(7, guide_level="senior"), rule(8, guide_level="senior")
    assert choose_rule([second, first], juice_line()) == first


def test_a_rule_for_another_store_level_or_category_never_applies() -> None:
    others = [
        rule(1, store_id=SH002),
        rule(2, guide_level="junior"),
        rule(3, category_id=WINE),
        rule(4, category_id=JUICE, store_id=SH002),
    ]
    assert choose_rule(others, juice_line()) is None
    chain_wide = rule(5)
    assert choose_rule([*others, chain_wide], juice_line()) == chain_wide


rules_st = st.lists(
    st.builds(
        CommissionRule,
        rule_id=st.uuids(),
        basis=st.sampled_from(list(CommissionBasis)),
        rate_bp=st.integers(0, 10_000),
        amount_per_item=st.integers(0, 10_000),
        category_id=st.sampled_from([None, JUICE, DRINKS, FOOD, WINE]),
        store_id=st.sampled_from([None, SH001, SH002]),
        guide_level=st.sampled_from([None, "senior", "junior"]),
        priority=st.integers(-3, 3),
    ),
    max_size=12,
)


@given(rules_st, st.sampled_from(["senior", "junior", "trainee"]))
def test_the_chosen_rule_matches_and_no_matching_rule_is_more_specific(
    rules: list[CommissionRule], level: str
) -> None:
    line = juice_line(level=level)
    chosen = choose_rule(rules, line)
    matching = [r for r in rules if matches(r, line)]
    if chosen is None:
        assert matching == []
        return
    assert chosen in matching
    assert all(r.dimensions <= chosen.dimensions for r in matching)
    lineage = line.category_lineage
    as_specific = [r for r in matching if r.dimensions == chosen.dimensions]
    if chosen.category_id is None:
        assert all(r.category_id is None for r in as_specific)
    else:
        depth = lineage.index(chosen.category_id)
        assert all(
            r.category_id is None or lineage.index(r.category_id) >= depth for r in as_specific
        )
    assert choose_rule(list(reversed(rules)), line) == chosen


# --- what a line earns -----------------------------------------------------------------------


def test_a_percentage_rounds_half_a_fen_up() -> None:
    three_pct = rule(1, rate_bp=300)
    assert commission_for_line(three_pct, juice_line(net=1_050)) == 32  # 31.5 fen
    assert commission_for_line(three_pct, juice_line(net=1_049)) == 31  # 31.47 fen
    assert commission_for_line(rule(2, rate_bp=10_000), juice_line(net=999)) == 999


def test_a_fixed_amount_per_item_is_capped_at_what_the_customer_paid() -> None:
    five_yuan_each = rule(1, basis=CommissionBasis.PER_ITEM, amount_per_item=500)
    assert commission_for_line(five_yuan_each, juice_line(net=10_000, items=3)) == 1_500
    assert commission_for_line(five_yuan_each, juice_line(net=800, items=3)) == 800
    assert commission_for_line(five_yuan_each, juice_line(net=0, items=1)) == 0


@given(
    st.integers(0, 100_000),
    st.integers(0, 10_000_000),
    st.integers(0, 1_000),
    st.integers(0, 10**4),
)
def test_a_guide_never_earns_more_than_the_line_net_nor_less_than_nothing(
    per_item: int, net: int, items: int, rate_bp: int
) -> None:
    line = juice_line(net=net, items=items)
    by_item = commission_for_line(
        rule(1, basis=CommissionBasis.PER_ITEM, amount_per_item=per_item), line
    )
    assert 0 <= by_item <= net
    assert by_item == min(net, items * per_item)
    by_rate = commission_for_line(rule(2, rate_bp=rate_bp), line)
    assert 0 <= by_rate <= net
    assert abs(by_rate * 10_000 - net * rate_bp) <= 5_000  # within half a fen


def test_rates_above_100_percent_and_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_bp"):
        rule(1, rate_bp=10_001)
    with pytest.raises(ValueError, match="amount_per_item"):
        rule(2, basis=CommissionBasis.PER_ITEM, amount_per_item=-1)
    with pytest.raises(ValueError, match="never negative"):
        juice_line(net=-1)


# --- monthly target bonus --------------------------------------------------------------------


def test_the_month_reaches_the_highest_tier_its_attainment_reaches() -> None:
    tiers = DEFAULT_TARGET_TIERS
    assert monthly_tier_bonus(79_999, 100_000, 10_000, tiers).tier.multiplier_pct == 100
    exactly_80 = monthly_tier_bonus(80_000, 100_000, 10_000, tiers)
    assert (exactly_80.attainment_pct, exactly_80.tier, exactly_80.bonus) == (
        80,
        TargetTier(80, 110),
        1_000,
    )
    assert monthly_tier_bonus(119_999, 100_000, 10_000, tiers).bonus == 3_000
    far_beyond = monthly_tier_bonus(500_000, 100_000, 10_000, tiers)
    assert (far_beyond.attainment_pct, far_beyond.bonus) == (500, 5_000)


def test_attainment_is_floored_and_the_bonus_rounds_half_up() -> None:
    outcome = monthly_tier_bonus(99_999, 100_000, 15, DEFAULT_TARGET_TIERS)
    assert outcome.attainment_pct == 99  # 99.999 % is not 100 %
    assert outcome.bonus == 2  # 15 × 10 % = 1.5 fen


def test_a_month_without_a_target_pays_commission_as_earned() -> None:
    for target in (0, -1):
        assert monthly_tier_bonus(1_000_000, target, 10_000, DEFAULT_TARGET_TIERS) == TierOutcome(
            attainment_pct=0, tier=BASE_TIER, bonus=0
        )


def test_a_missed_target_with_a_multiplier_below_100_claws_nothing_back() -> None:
    tiers = (TargetTier(0, 50), TargetTier(100, 120))
    missed = monthly_tier_bonus(10_000, 100_000, 10_000, tiers)
    assert (missed.attainment_pct, missed.tier, missed.bonus) == (10, TargetTier(0, 50), 0)


def test_a_month_of_more_returns_than_sales_attains_nothing() -> None:
    outcome = monthly_tier_bonus(-5_000, 100_000, 0, DEFAULT_TARGET_TIERS)
    assert (outcome.attainment_pct, outcome.bonus) == (0, 0)


def test_below_the_lowest_configured_tier_the_base_tier_applies() -> None:
    outcome = monthly_tier_bonus(50_000, 100_000, 10_000, (TargetTier(80, 120),))
    assert (outcome.tier, outcome.bonus) == (BASE_TIER, 0)


@pytest.mark.parametrize(
    "tiers",
    [
        (TargetTier(0, 100), TargetTier(100, 130), TargetTier(80, 110)),
        (TargetTier(0, 100), TargetTier(100, 130), TargetTier(100, 150)),
        (TargetTier(0, -10),),
        (TargetTier(-20, 100),),
    ],
)
def test_unsorted_duplicate_or_negative_tiers_are_refused(tiers: tuple[TargetTier, ...]) -> None:
    with pytest.raises(ValueError, match="tier"):
        monthly_tier_bonus(100_000, 100_000, 10_000, tiers)


@given(
    st.integers(-(10**6), 10**8),
    st.integers(-10, 10**7),
    st.integers(0, 10**6),
    st.lists(st.integers(0, 300), unique=True, max_size=6).map(sorted),
    st.lists(st.integers(0, 300), min_size=6, max_size=6),
)
def test_the_bonus_is_the_uplift_of_the_highest_tier_reached_and_never_negative(
    sales: int, target: int, base: int, thresholds: list[int], multipliers: list[int]
) -> None:
    tiers = [TargetTier(a, m) for a, m in zip(thresholds, multipliers, strict=False)]
    outcome = monthly_tier_bonus(sales, target, base, tiers)
    assert outcome.bonus >= 0
    assert outcome.tier in (*tiers, BASE_TIER)
    # The multiplier's part above 100 % of the base commission, to the nearest fen.
    assert abs(outcome.bonus * 100 - base * max(0, outcome.tier.multiplier_pct - 100)) <= 50
    if target > 0:
        assert outcome.attainment_pct == max(0, sales) * 100 // target
        reached = [t for t in tiers if t.attainment_pct <= outcome.attainment_pct]
        assert outcome.tier == (reached[-1] if reached else BASE_TIER)
    else:
        assert outcome.bonus == 0


# --- returns -------------------------------------------------------------------------------


def test_a_half_refund_takes_back_half_the_commission_and_the_rest_takes_the_remainder() -> None:
    assert reversal_for_return(301, 10_000, 0, 5_000) == 151  # 150.5 rounds up
    assert reversal_for_return(301, 10_000, 5_000, 5_000) == 150


def test_refunds_beyond_the_line_net_take_back_nothing_more() -> None:
    assert reversal_for_return(300, 10_000, 0, 12_000) == 300
    assert reversal_for_return(300, 10_000, 10_000, 1_000) == 0


def test_a_line_with_no_net_amount_or_commission_reverses_nothing() -> None:
    assert reversal_for_return(0, 10_000, 0, 10_000) == 0
    assert reversal_for_return(300, 0, 0, 10) == 0


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        reversal_for_return(300, 10_000, 0, -1)


def _split(total: int, cuts: list[int]) -> list[int]:
    parts: list[int] = []
    left = total
    for cut in cuts:
        if left == 0:
            break
        part = min(left, cut)
        parts.append(part)
        left -= part
    if left:
        parts.append(left)
    return parts


@given(
    st.integers(0, 100_000),
    st.integers(1, 10_000_000),
    st.lists(st.integers(1, 10_000_000), max_size=8),
)
def test_refunding_a_whole_line_in_any_parts_reverses_exactly_the_commission(
    commission: int, line_net: int, cuts: list[int]
) -> None:
    taken, before = [], 0
    for part in _split(line_net, cuts):
        taken.append(reversal_for_return(commission, line_net, before, part))
        before += part
    assert all(t >= 0 for t in taken)
    assert sum(taken) == commission


@given(
    st.integers(0, 100_000),
    st.integers(0, 10_000_000),
    st.lists(st.integers(0, 10_000_000), max_size=8),
)
def test_partial_refunds_never_reverse_more_than_the_commission(
    commission: int, line_net: int, refunds: list[int]
) -> None:
    taken, before = 0, 0
    for refund in refunds:
        step = reversal_for_return(commission, line_net, before, refund)
        assert step >= 0
        taken += step
        before += refund
    assert taken <= commission
