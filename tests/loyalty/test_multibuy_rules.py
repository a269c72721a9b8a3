"""Multi-buy promotions worked out on runs of units: the same answer as counting unit by unit,
without a list of every unit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.loyalty.multibuy_rules import bundle_saving, free_units_saving, unit_runs

runs_st = st.lists(st.tuples(st.integers(0, 5_000), st.integers(0, 12)), max_size=6)


def _one_by_one(runs: list[tuple[int, int]]) -> list[int]:
    return sorted((price for price, count in runs for _ in range(count)), reverse=True)


def test_runs_are_dearest_first_and_equal_prices_keep_their_order() -> None:
    assert unit_runs([(500, 1), (1_200, 2), (500, 3)]) == [(1_200, 2), (500, 1), (500, 3)]


def test_buy_two_get_one_frees_the_cheapest_unit_of_each_three_across_lines() -> None:
    runs = unit_runs([(500, 4), (1_000, 3)])
    assert free_units_saving(runs, buy=2, get=1) == 2 * 500
    assert free_units_saving(unit_runs([(1_000, 2)]), buy=2, get=1) is None


def test_a_bundle_priced_above_its_units_saves_nothing_rather_than_charging_more() -> None:
    runs = unit_runs([(3_000, 2), (1_000, 2)])
    assert bundle_saving(runs, size=3, bundle_price_fen=5_000) == 3_000 + 3_000 + 1_000 - 5_000
    assert bundle_saving(runs, size=3, bundle_price_fen=9_000) == 0
    assert bundle_saving(runs, size=5, bundle_price_fen=5_000) is None


@given(runs_st, st.integers(1, 4), st.integers(1, 3))
def test_free_units_are_the_cheapest_as_if_counted_one_by_one(
    runs: list[tuple[int, int]], buy: int, get: int
) -> None:
    units = _one_by_one(runs)
    group = buy + get
    expected = sum(units[len(units) - len(units) // group * get :]) if len(units) >= group else None
    assert free_units_saving(unit_runs(runs), buy, get) == expected


@given(runs_st, st.integers(2, 5), st.integers(1, 10_000))
def test_bundles_take_the_dearest_units_as_if_counted_one_by_one(
    runs: list[tuple[int, int]], size: int, price: int
) -> None:
    units = _one_by_one(runs)
    bundles = len(units) // size
    expected = max(0, sum(units[: bundles * size]) - bundles * price) if bundles else None
    assert bundle_saving(unit_runs(runs), size, price) == expected
