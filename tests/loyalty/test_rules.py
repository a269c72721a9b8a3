"""Pure points rules: what a sale earns, what a return takes back, which lots pay first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.loyalty import rules
from zhongtai.loyalty.rules import EarnPolicy, LotBalance, SaleLine, Tender, TenderKind

ONE_PER_YUAN = EarnPolicy(points_per_yuan=1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)

amounts = st.integers(min_value=0, max_value=10_000_000)
lines_st = st.lists(
    st.builds(SaleLine, amounts, st.sampled_from([None, "fresh", "wine"])), min_size=1, max_size=20
)
tenders_st = st.lists(st.builds(Tender, st.sampled_from(list(TenderKind)), amounts), max_size=5)


def test_a_cash_sale_of_100_yuan_earns_100_points_at_one_per_yuan() -> None:
    earning = rules.points_for_sale([SaleLine(6_000), SaleLine(4_099)], [], ONE_PER_YUAN)
    assert (earning.points, earning.basis_fen) == (100, 10_099)


def test_what_is_paid_with_points_or_coupons_earns_nothing() -> None:
    tenders = [
        Tender(TenderKind.COUPON, 2_000),
        Tender(TenderKind.POINTS, 1_000),
        Tender(TenderKind.WECHAT_PAY, 7_000),
    ]
    assert rules.points_for_sale([SaleLine(10_000)], tenders, ONE_PER_YUAN).points == 70


def test_category_tier_and_campaign_multipliers_compound() -> None:
    policy = EarnPolicy(
        points_per_yuan=1,
        category_multiplier_pct={"wine": 200},
        tier_multiplier_pct=150,
        campaign_multiplier_pct=200,
    )
    earning = rules.points_for_sale([SaleLine(1_000, "wine"), SaleLine(1_000, "fresh")], [], policy)
    # (10 yuan × 2 + 10 yuan × 1) × 1.5 × 2
    assert earning.points == 90


@given(lines_st, tenders_st)
def test_points_never_negative_and_never_more_than_an_all_cash_sale(
    lines: list[SaleLine], tenders: list[Tender]
) -> None:
    with_tenders = rules.points_for_sale(lines, tenders, ONE_PER_YUAN)
    all_cash = rules.points_for_sale(lines, [], ONE_PER_YUAN)
    assert 0 <= with_tenders.points <= all_cash.points
    assert sum(with_tenders.eligible_fen) <= with_tenders.basis_fen


@given(st.integers(min_value=-5, max_value=10**9), st.lists(amounts, min_size=1, max_size=30))
def test_an_allocation_sums_to_its_total_and_follows_the_weights(
    total: int, weights: list[int]
) -> None:
    parts = rules.allocate(total, weights)
    if sum(weights) > 0:
        assert sum(parts) == total
        assert all(w > 0 or p == 0 for w, p in zip(weights, parts, strict=True))
    else:
        assert parts == [0] * len(weights)


@given(
    st.integers(min_value=0, max_value=100_000),
    st.integers(min_value=1, max_value=10_000_000),
    st.lists(st.integers(min_value=1, max_value=10_000_000), min_size=1, max_size=8),
)
def test_returning_everything_in_any_parts_takes_back_exactly_what_was_earned(
    earned: int, basis: int, cuts: list[int]
) -> None:
    parts: list[int] = []
    left = basis
    for cut in cuts:
        if left == 0:
            break
        part = min(left, cut)
        parts.append(part)
        left -= part
    if left:
        parts.append(left)
    taken, before = [], 0
    for part in parts:
        taken.append(rules.reversal_points(earned, basis, before, part))
        before += part
    assert all(t >= 0 for t in taken)
    assert sum(taken) == earned


def test_a_half_return_takes_back_half_the_points_rounded_down() -> None:
    assert rules.reversal_points(101, 10_000, 0, 5_000) == 50
    assert rules.reversal_points(101, 10_000, 5_000, 5_000) == 51


lot_st = st.builds(
    LotBalance,
    st.uuids(),
    st.integers(min_value=0, max_value=1_000),
    st.one_of(
        st.none(), st.integers(min_value=0, max_value=1_000).map(lambda d: T0 + timedelta(days=d))
    ),
    st.integers(min_value=0, max_value=1_000).map(lambda d: T0 - timedelta(days=d)),
)


@given(st.lists(lot_st, max_size=20), st.integers(min_value=0, max_value=30_000))
def test_spending_takes_nearest_expiry_first_and_never_more_than_a_lot_holds(
    lots: list[LotBalance], points: int
) -> None:
    plan = rules.plan_spending(lots, points)
    by_id = {lot.lot_id: lot for lot in lots}
    assert sum(p for _, p in plan) == min(points, sum(lot.remaining for lot in lots))
    assert all(0 < p <= by_id[i].remaining for i, p in plan)
    used = [by_id[i] for i, _ in plan]
    assert used == sorted(used, key=rules.spending_order)
    # Only the last lot used may be left with points while a later-expiring one was touched.
    assert all(by_id[i].remaining == p for i, p in plan[:-1])


def test_points_that_never_expire_are_spent_last() -> None:
    never = LotBalance(uuid.uuid4(), 50, None, T0 - timedelta(days=900))
    soon = LotBalance(uuid.uuid4(), 50, T0 + timedelta(days=3), T0)
    later = LotBalance(uuid.uuid4(), 50, T0 + timedelta(days=30), T0)
    plan = rules.plan_spending([never, later, soon], 120)
    assert plan == [(soon.lot_id, 50), (later.lot_id, 50), (never.lot_id, 20)]


def test_an_order_may_be_paid_with_points_up_to_its_cap_and_the_balance() -> None:
    kw = {"points_per_yuan_off": 100, "max_share_pct": 50}
    assert rules.redeemable_points(order_fen=10_000, balance=9_999, **kw) == 5_000
    assert rules.redeemable_points(order_fen=10_000, balance=1_234, **kw) == 1_234
    assert rules.redeemable_points(order_fen=0, balance=1_234, **kw) == 0
