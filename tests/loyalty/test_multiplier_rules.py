"""Pure earn rules: the nearest category's rule wins, the highest campaign wins, a rule is
checked before it is stored, and a return inside the window takes the sale's pending points."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.loyalty import rules
from zhongtai.loyalty.multiplier_rules import (
    CampaignMultiplier,
    CategoryMultiplier,
    EarnRuleDraft,
    EarnRuleKind,
    applied_multipliers,
    campaign_applies,
    category_rates,
    earn_rule_problems,
    winning_campaign,
)
from zhongtai.loyalty.rules import EarnPolicy, LotBalance, SaleLine

T0 = datetime(2026, 11, 11, tzinfo=UTC)
DAY = timedelta(days=1)


def campaign(
    rule_id: str,
    pct: int,
    *,
    starts: datetime = T0,
    days: int = 1,
    channels: frozenset[str] = frozenset(),
    stores: frozenset[str] = frozenset(),
) -> CampaignMultiplier:
    return CampaignMultiplier(
        rule_id, f"campaign {rule_id}", pct, starts, starts + days * DAY, channels, stores
    )


# -- categories: the nearest category that has a rule wins ------------------------------------


def test_a_subcategory_earns_at_its_own_rule_rather_than_its_parents() -> None:
    # 生鲜 (fresh) ×1.5 for everything below it, but 水果 (fruit) under it has its own ×2.
    policy = EarnPolicy(points_per_yuan=1, category_multiplier_pct={"fresh": 150, "fruit": 200})
    fruit = SaleLine(10_000, "fruit", ("fresh", "food"))
    vegetables = SaleLine(10_000, "vegetables", ("fresh", "food"))
    bread = SaleLine(10_000, "bread", ("food",))
    assert rules.points_for_sale([fruit], [], policy).points == 200
    assert rules.points_for_sale([vegetables], [], policy).points == 150
    assert rules.points_for_sale([bread], [], policy).points == 100


def test_a_category_at_zero_earns_nothing_though_its_parent_earns_double() -> None:
    policy = EarnPolicy(points_per_yuan=1, category_multiplier_pct={"tobacco": 0, "shop": 200})
    cigarettes = SaleLine(5_000, "tobacco", ("shop",))
    assert rules.points_for_sale([cigarettes], [], policy).points == 0


lineage_st = st.lists(
    st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=5, unique=True
)
rates_st = st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 1000))


@given(lineage_st, rates_st)
def test_a_line_earns_at_the_first_category_of_its_lineage_that_has_a_rule(
    lineage: list[str], rates: dict[str, int]
) -> None:
    line = SaleLine(10_000, lineage[0], tuple(lineage[1:]))
    nearest = next((c for c in lineage if c in rates), None)
    assert rules.multiplied_category(line, rates) == nearest
    expected = 100 if nearest is None else rates[nearest]
    policy = EarnPolicy(points_per_yuan=1, category_multiplier_pct=rates)
    assert rules.points_for_sale([line], [], policy).points == expected


# -- campaigns: window, channel, store; the highest wins ---------------------------------------


def test_a_campaign_holds_from_its_start_until_just_before_its_end() -> None:
    double = campaign("c1", 200)
    assert campaign_applies(double, T0, "app", None)
    assert campaign_applies(double, T0 + DAY - timedelta(microseconds=1), "app", None)
    assert not campaign_applies(double, T0 + DAY, "app", None)
    assert not campaign_applies(double, T0 - timedelta(seconds=1), "app", None)


def test_a_campaign_limited_to_channels_and_stores_holds_only_there() -> None:
    tills_of_one_store = campaign("c1", 200, channels=frozenset({"pos"}), stores=frozenset({"S1"}))
    assert campaign_applies(tills_of_one_store, T0, "pos", "S1")
    assert not campaign_applies(tills_of_one_store, T0, "app", "S1")
    assert not campaign_applies(tills_of_one_store, T0, "pos", "S2")
    # A touchpoint that does not say its channel only meets campaigns open to every channel.
    assert not campaign_applies(tills_of_one_store, T0, None, "S1")
    assert campaign_applies(campaign("c2", 200), T0, None, None)


def test_when_campaigns_overlap_the_highest_multiplier_wins_and_they_never_stack() -> None:
    chain_double = campaign("c1", 200)
    store_opening_triple = campaign("c2", 300, stores=frozenset({"S1"}))
    app_150 = campaign("c3", 150, channels=frozenset({"app"}))
    offers = [chain_double, store_opening_triple, app_150]
    assert winning_campaign(offers, T0, "pos", "S1") == store_opening_triple
    assert winning_campaign(offers, T0, "app", "S2") == chain_double
    assert winning_campaign(offers, T0 + 2 * DAY, "app", "S1") is None


def test_between_equal_campaigns_the_one_created_first_wins() -> None:
    older, newer = campaign("0001", 200), campaign("0002", 200)
    assert winning_campaign([newer, older], T0, "app", None) == older


campaigns_st = st.lists(
    st.builds(
        campaign,
        st.uuids().map(str),
        st.integers(101, 1000),
        starts=st.sampled_from([T0 - DAY, T0, T0 + DAY]),
        days=st.integers(1, 3),
        channels=st.frozensets(st.sampled_from(["pos", "app"])),
        stores=st.frozensets(st.sampled_from(["S1", "S2"])),
    ),
    max_size=6,
)


@given(campaigns_st, st.sampled_from(["pos", "app", None]), st.sampled_from(["S1", "S2", None]))
def test_the_winner_applies_and_no_applying_campaign_is_higher(
    offers: list[CampaignMultiplier], channel: str | None, store: str | None
) -> None:
    winner = winning_campaign(offers, T0, channel, store)
    applying = [c for c in offers if campaign_applies(c, T0, channel, store)]
    if winner is None:
        assert applying == []
    else:
        assert winner in applying
        assert winner.multiplier_pct == max(c.multiplier_pct for c in applying)


# -- checking a rule before it is stored --------------------------------------------------------


def draft(**kw: object) -> EarnRuleDraft:
    base: dict[str, object] = {
        "kind": EarnRuleKind.CAMPAIGN,
        "name": "双11 积分翻倍",
        "multiplier_pct": 200,
        "starts_at": T0,
        "ends_at": T0 + DAY,
    }
    return EarnRuleDraft(**{**base, **kw})  # type: ignore[arg-type]


def fields(found: list[tuple[str, str]]) -> list[str]:
    return [field for field, _ in found]


def test_a_well_formed_campaign_and_category_rule_have_no_problems() -> None:
    assert earn_rule_problems(draft(), T0 - DAY) == []
    category = EarnRuleDraft(EarnRuleKind.CATEGORY, "生鲜 ×1.5", 150, category_id="fresh")
    assert earn_rule_problems(category, T0) == []


def test_a_campaign_needs_a_window_that_has_not_ended_and_must_raise_points() -> None:
    assert fields(earn_rule_problems(draft(ends_at=None), T0)) == ["ends_at"]
    assert fields(earn_rule_problems(draft(starts_at=None), T0)) == ["starts_at"]
    assert fields(earn_rule_problems(draft(ends_at=T0), T0 - DAY)) == ["ends_at"]
    assert fields(earn_rule_problems(draft(), T0 + 2 * DAY)) == ["ends_at"]
    # 2 meant as "×2" would be ×0.02: refused, as is anything not above 100%.
    assert fields(earn_rule_problems(draft(multiplier_pct=2), T0)) == ["multiplier_pct"]
    assert fields(earn_rule_problems(draft(multiplier_pct=1001), T0)) == ["multiplier_pct"]
    assert fields(earn_rule_problems(draft(category_id="fresh"), T0)) == ["category_id"]


def test_a_category_rule_names_its_category_and_has_no_campaign_terms() -> None:
    bare = EarnRuleDraft(EarnRuleKind.CATEGORY, "x", 150)
    assert fields(earn_rule_problems(bare, T0)) == ["category_id"]
    windowed = EarnRuleDraft(
        EarnRuleKind.CATEGORY,
        "x",
        150,
        category_id="fresh",
        ends_at=T0,
        channels=frozenset({"app"}),
    )
    assert fields(earn_rule_problems(windowed, T0)) == ["ends_at", "channels"]
    assert fields(earn_rule_problems(draft(name="  "), T0)) == ["name"]


# -- the record of what applied ----------------------------------------------------------------


def test_the_entry_records_each_multiplier_that_applied_and_the_amount_it_applied_to() -> None:
    fresh = CategoryMultiplier("r-fresh", "生鲜 ×1.5", "fresh", 150)
    double = campaign("r-double", 200)
    lines = [
        SaleLine(6_000, "fruit", ("fresh",)),
        SaleLine(4_000, "vegetables", ("fresh",)),
        SaleLine(10_000, "bread"),
    ]
    categories = category_rates([fresh])
    policy = EarnPolicy(
        points_per_yuan=1,
        category_multiplier_pct={"fresh": 150},
        tier_multiplier_pct=120,
        campaign_multiplier_pct=200,
    )
    earning = rules.points_for_sale(lines, [], policy)
    # (100 yuan × 1.5 + 100 yuan) × 1.2 × 2
    assert earning.points == 600
    record = applied_multipliers(
        lines,
        earning,
        points_per_yuan=1,
        tier="silver",
        tier_multiplier_pct=120,
        categories=categories,
        campaign=double,
    )
    assert record == {
        "points_per_yuan": 1,
        "eligible_fen": 20_000,
        "tier": {"tier": "silver", "multiplier_pct": 120},
        "campaign": {"rule_id": "r-double", "name": "campaign r-double", "multiplier_pct": 200},
        "categories": [
            {
                "rule_id": "r-fresh",
                "name": "生鲜 ×1.5",
                "category_id": "fresh",
                "multiplier_pct": 150,
                "eligible_fen": 10_000,
            }
        ],
    }


# -- a return takes the sale's own pending points first ----------------------------------------


def lot(remaining: int, *, pending: bool = False, days: int = 30) -> LotBalance:
    return LotBalance(uuid.uuid4(), remaining, T0 + days * DAY, T0, pending)


def test_a_return_inside_the_window_takes_the_sales_pending_points_and_leaves_no_debt() -> None:
    own = lot(100, pending=True)
    other = lot(50)
    plan = rules.plan_reversal(40, own, [other])
    assert plan.lots == [(own.lot_id, 40)]
    assert (plan.from_pending, plan.from_balance, plan.debt) == (40, 0, 0)


def test_other_sales_pending_points_never_pay_a_return() -> None:
    spent_sale = lot(0)
    someone_elses_pending = lot(500, pending=True)
    plan = rules.plan_reversal(30, spent_sale, [someone_elses_pending])
    assert (plan.lots, plan.debt) == ([], 30)


@given(
    st.integers(0, 1_000),
    st.integers(0, 1_000),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 500), st.booleans()), max_size=5),
)
def test_a_reversal_takes_exactly_what_is_due_between_lots_and_debt(
    due: int, own_left: int, own_pending: bool, others: list[tuple[int, bool]]
) -> None:
    own = lot(own_left, pending=own_pending)
    rest = [lot(n, pending=p) for n, p in others]
    plan = rules.plan_reversal(due, own, rest)
    taken = sum(p for _, p in plan.lots)
    assert taken == plan.from_pending + plan.from_balance
    assert taken + plan.debt == due and plan.debt >= 0
    pending_ids = {x.lot_id for x in rest if x.pending}
    assert not pending_ids & {lot_id for lot_id, _ in plan.lots}
    if own_pending and own_left >= due:
        assert plan.debt == 0 and plan.from_balance == 0
