"""The recommendation model as plain data: neighbours, popularity, what she just bought, her
ranking, and the offline evaluation's split and scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.guides.recommendation_checks import (
    BLENDS,
    HeldOut,
    choose_blend,
    hold_out_last_basket,
    score_top_n,
)
from zhongtai.guides.recommendation_rules import (
    DEFAULT_PARAMETERS,
    Basket,
    CoOccurrence,
    ModelParameters,
    Neighbour,
    PopularSku,
    Reason,
    build_neighbours,
    decay,
    just_bought,
    popular_lists,
    rank_popular,
    recommend,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
#: Co-purchase alone, so that a test of neighbours is not blurred by her own repeat purchases.
CO_PURCHASE_ONLY = replace(DEFAULT_PARAMETERS, repeat_weight=0.0)


def basket(days_ago: float, *skus: int) -> Basket[int]:
    return Basket(NOW - timedelta(days=days_ago), frozenset(skus))


def neighbour_ids(neighbours: dict[int, tuple[Neighbour[int], ...]], sku: int) -> list[int]:
    return [n.sku_id for n in neighbours.get(sku, ())]


# --- neighbours ------------------------------------------------------------------------------


def test_skus_bought_together_by_several_customers_become_each_others_neighbours() -> None:
    histories = {1: [basket(1, 10, 20)], 2: [basket(2, 10, 20, 30)], 3: [basket(3, 30, 40)]}
    neighbours = build_neighbours(histories, now=NOW, parameters=DEFAULT_PARAMETERS)
    assert neighbour_ids(neighbours, 10) == [20]
    assert neighbour_ids(neighbours, 20) == [10]
    assert neighbours[10][0].support == 2


def test_a_pair_seen_in_one_basket_only_is_chance_and_not_a_neighbour() -> None:
    histories = {1: [basket(1, 10, 20)], 2: [basket(2, 10, 30)]}
    neighbours = build_neighbours(histories, now=NOW, parameters=DEFAULT_PARAMETERS)
    assert neighbours == {}
    relaxed = replace(DEFAULT_PARAMETERS, min_support=1)
    assert neighbour_ids(build_neighbours(histories, now=NOW, parameters=relaxed), 10) == [20, 30]


def test_basket_level_pairs_need_one_trip_and_customer_level_pairs_span_her_trips() -> None:
    # Each customer bought 10 and 20, but never on the same trip.
    histories = {m: [basket(1, 10), basket(5, 20)] for m in (1, 2)}
    by_basket = build_neighbours(histories, now=NOW, parameters=DEFAULT_PARAMETERS)
    by_customer = build_neighbours(
        histories,
        now=NOW,
        parameters=replace(DEFAULT_PARAMETERS, co_occurrence=CoOccurrence.CUSTOMER),
    )
    assert by_basket == {}
    assert neighbour_ids(by_customer, 10) == [20]


def test_a_sku_keeps_only_its_top_k_neighbours_strongest_first() -> None:
    # 10 was bought with 20 four times, with 30 three times, with 40 twice.
    histories = {
        1: [basket(1, 10, 20, 30, 40), basket(2, 10, 20, 30)],
        2: [basket(1, 10, 20, 30, 40), basket(3, 10, 20)],
    }
    neighbours = build_neighbours(
        histories, now=NOW, parameters=replace(DEFAULT_PARAMETERS, top_k=2)
    )
    assert neighbour_ids(neighbours, 10) == [20, 30]
    assert neighbours[10][0].score > neighbours[10][1].score


def test_recent_co_purchases_outweigh_as_many_old_ones() -> None:
    histories = {
        1: [basket(1, 10, 20), basket(200, 10, 30)],
        2: [basket(2, 10, 20), basket(210, 10, 30)],
    }
    neighbours = build_neighbours(histories, now=NOW, parameters=DEFAULT_PARAMETERS)
    assert neighbour_ids(neighbours, 10) == [20, 30]


def test_a_best_seller_is_damped_as_a_neighbour_against_a_specific_companion() -> None:
    # Milk (1) goes with everything; pasta (10) and sauce (11) go with each other.
    histories = {m: [basket(1, 1, 10, 11)] for m in range(3)}
    histories |= {m: [basket(1, 1, 50 + m)] for m in range(3, 30)}
    neighbours = build_neighbours(histories, now=NOW, parameters=DEFAULT_PARAMETERS)
    assert neighbour_ids(neighbours, 10) == [11, 1]


def test_the_same_histories_in_any_order_give_the_same_neighbours() -> None:
    histories = {
        1: [basket(1, 10, 20, 30), basket(4, 20, 30)],
        2: [basket(2, 10, 20), basket(3, 30, 40)],
        3: [basket(5, 30, 40, 10)],
    }
    reordered = {k: list(reversed(v)) for k, v in reversed(list(histories.items()))}
    params = replace(DEFAULT_PARAMETERS, min_support=1)
    assert build_neighbours(histories, now=NOW, parameters=params) == build_neighbours(
        reordered, now=NOW, parameters=params
    )


# --- popularity and what she just bought -----------------------------------------------------


def test_decay_halves_a_purchase_per_half_life_and_never_grows_past_today() -> None:
    assert decay(timedelta(0), 60) == pytest.approx(1.0)
    assert decay(timedelta(days=60), 60) == pytest.approx(0.5)
    assert decay(timedelta(days=120), 60) == pytest.approx(0.25)
    assert decay(timedelta(days=-3), 60) == pytest.approx(1.0)


def test_popularity_counts_customers_not_the_times_one_customer_bought() -> None:
    histories = [
        [basket(d, 10) for d in range(1, 11)],  # one customer, ten times
        [basket(1, 20)],
        [basket(2, 20)],
    ]
    popular = rank_popular(histories, now=NOW, half_life_days=60, limit=10)
    assert [p.sku_id for p in popular] == [20, 10]
    assert [p.buyers for p in popular] == [2, 1]


def test_lately_bought_skus_are_more_popular_than_as_many_bought_long_ago() -> None:
    histories = [[basket(300, 10)], [basket(300, 10)], [basket(2, 20)], [basket(3, 20)]]
    popular = rank_popular(histories, now=NOW, half_life_days=60, limit=1)
    assert [p.sku_id for p in popular] == [20]


def test_a_store_lists_its_own_best_sellers_first_then_the_chains() -> None:
    histories = {
        1: [Basket(NOW, frozenset({10}), "north")],
        2: [Basket(NOW, frozenset({10}), "north")],
        3: [Basket(NOW, frozenset({20}), "south"), Basket(NOW, frozenset({30}), "north")],
        4: [Basket(NOW, frozenset({20}), "south")],
        5: [Basket(NOW, frozenset({20}), "south")],
    }
    popular = popular_lists(histories, now=NOW, parameters=DEFAULT_PARAMETERS)
    assert [p.sku_id for p in popular.chain] == [20, 10, 30]
    assert [p.sku_id for p in popular.at("north")] == [10, 30, 20, 10, 30]
    assert [p.sku_id for p in popular.at("new store")] == [20, 10, 30]
    assert [p.sku_id for p in popular.at(None)] == [20, 10, 30]


def test_just_bought_is_her_last_order_and_everything_of_the_last_days() -> None:
    history = [basket(40, 1), basket(30, 2), basket(6, 3), basket(2, 4)]
    assert just_bought(history, now=NOW, days=7) == {3, 4}


def test_her_last_order_counts_as_just_bought_however_long_ago_it_was() -> None:
    history = [basket(90, 1), basket(60, 2)]
    assert just_bought(history, now=NOW, days=7) == {2}
    assert just_bought([], now=NOW, days=7) == frozenset()


# --- her ranking -------------------------------------------------------------------------------


POPULAR = [PopularSku(100 + i, 10.0 - i, 5) for i in range(10)]


def test_a_sku_bought_with_hers_comes_first_and_names_what_she_bought() -> None:
    neighbours = {1: (Neighbour(50, 0.8, 4), Neighbour(51, 0.2, 2))}
    recs = recommend(
        [basket(30, 1)], neighbours, POPULAR, exclude=set(), limit=3, now=NOW,
        parameters=CO_PURCHASE_ONLY,
    )  # fmt: skip
    assert [(r.sku_id, r.reason, r.because_of) for r in recs] == [
        (50, Reason.BOUGHT_WITH, 1),
        (51, Reason.BOUGHT_WITH, 1),
        (100, Reason.POPULAR, None),
    ]


def test_a_sku_neighbouring_several_of_hers_sums_their_evidence() -> None:
    neighbours = {
        1: (Neighbour(50, 0.5, 3), Neighbour(60, 0.3, 3)),
        2: (Neighbour(60, 0.3, 3),),
    }
    recs = recommend(
        [basket(30, 1, 2)], neighbours, [], exclude=set(), limit=2, now=NOW,
        parameters=CO_PURCHASE_ONLY,
    )  # fmt: skip
    assert [r.sku_id for r in recs] == [60, 50]
    assert recs[0].score == pytest.approx(recs[1].score * 1.2)


def test_what_she_bought_before_but_not_just_now_comes_back_the_regular_first() -> None:
    history = [basket(40, 7, 1), basket(26, 7), basket(12, 7), basket(1, 2)]
    neighbours = {1: (Neighbour(50, 0.9, 4),), 2: (Neighbour(51, 0.9, 4),)}
    recs = recommend(history, neighbours, POPULAR, exclude={2}, limit=4, now=NOW)
    assert [(r.sku_id, r.reason, r.because_of) for r in recs] == [
        (7, Reason.BOUGHT_BEFORE, None),
        (1, Reason.BOUGHT_BEFORE, None),
        (51, Reason.BOUGHT_WITH, 2),
        (50, Reason.BOUGHT_WITH, 1),
    ]


def test_a_member_without_history_gets_the_popular_list_in_its_order() -> None:
    recs = recommend([], {}, POPULAR, exclude=set(), limit=4, now=NOW)
    assert [(r.sku_id, r.reason) for r in recs] == [(100 + i, Reason.POPULAR) for i in range(4)]


def test_out_of_stock_and_just_bought_skus_are_skipped_and_the_list_still_fills() -> None:
    neighbours = {1: (Neighbour(50, 0.8, 4), Neighbour(51, 0.5, 4))}
    available = {51, 101, 102, 103, 104}
    recs = recommend(
        [basket(20, 1)], neighbours, POPULAR, exclude={101}, available=available, limit=4,
        now=NOW,
    )  # fmt: skip
    assert [r.sku_id for r in recs] == [51, 102, 103, 104]


def test_a_popular_weight_lets_best_sellers_outrank_her_own_earlier_purchases() -> None:
    history = [basket(40, 7), basket(1, 2)]
    plain = recommend(history, {}, POPULAR, exclude={2}, limit=2, now=NOW)
    assert [(r.sku_id, r.reason) for r in plain] == [
        (7, Reason.BOUGHT_BEFORE),
        (100, Reason.POPULAR),
    ]
    leaning = replace(DEFAULT_PARAMETERS, popular_weight=10.0)
    recs = recommend(history, {}, POPULAR, exclude={2}, limit=2, now=NOW, parameters=leaning)
    assert [(r.sku_id, r.reason) for r in recs] == [(100, Reason.POPULAR), (101, Reason.POPULAR)]


def test_recorded_parameters_read_back_as_they_were() -> None:
    chosen = replace(DEFAULT_PARAMETERS, co_occurrence=CoOccurrence.CUSTOMER, popular_weight=1.0)
    assert ModelParameters.from_json({**chosen.as_json(), "lookback_days": 365}) == chosen
    assert ModelParameters.from_json({"top_k": 7}) == replace(DEFAULT_PARAMETERS, top_k=7)


def test_a_limit_of_zero_recommends_nothing() -> None:
    assert recommend([basket(1, 1)], {}, POPULAR, exclude=set(), limit=0, now=NOW) == []


# --- properties ------------------------------------------------------------------------------

skus = st.integers(min_value=0, max_value=15)
baskets = st.builds(
    lambda days_ago, bought: basket(days_ago, *bought),
    st.floats(min_value=0, max_value=200),
    st.frozensets(skus, min_size=1, max_size=5),
)
histories = st.dictionaries(st.integers(0, 8), st.lists(baskets, min_size=1, max_size=5))
sku_sets = st.frozensets(skus, max_size=10)


def _model(
    all_histories: dict[int, list[Basket[int]]], params: ModelParameters
) -> tuple[dict[int, tuple[Neighbour[int], ...]], tuple[PopularSku[int], ...]]:
    neighbours = build_neighbours(all_histories, now=NOW, parameters=params)
    popular = rank_popular(all_histories.values(), now=NOW, half_life_days=60, limit=16)
    return neighbours, popular


@given(
    histories,
    st.lists(baskets, max_size=4),
    sku_sets,
    sku_sets,
    st.integers(0, 12),
    st.sampled_from(
        [
            DEFAULT_PARAMETERS,
            CO_PURCHASE_ONLY,
            replace(CO_PURCHASE_ONLY, min_support=1),
            replace(DEFAULT_PARAMETERS, popular_weight=10.0),
        ]
    ),
)
def test_recommendations_are_never_excluded_unavailable_or_repeated_and_at_most_the_limit(
    all_histories: dict[int, list[Basket[int]]],
    hers: Sequence[Basket[int]],
    exclude: frozenset[int],
    unavailable: frozenset[int],
    limit: int,
    params: ModelParameters,
) -> None:
    neighbours, popular = _model(all_histories, params)
    available = frozenset(range(16)) - unavailable
    recs = recommend(
        hers, neighbours, popular, exclude=exclude, available=available, limit=limit, now=NOW,
        parameters=params,
    )  # fmt: skip
    ids = [r.sku_id for r in recs]
    assert len(ids) <= limit
    assert len(set(ids)) == len(ids)
    assert not set(ids) & exclude
    assert set(ids) <= available
    assert all(r.score > 0 for r in recs)
    assert all((r.because_of is not None) == (r.reason is Reason.BOUGHT_WITH) for r in recs)


@given(histories, st.lists(baskets, max_size=4), sku_sets, st.integers(0, 12))
def test_popularity_fills_the_list_while_popular_skus_remain(
    all_histories: dict[int, list[Basket[int]]],
    hers: Sequence[Basket[int]],
    exclude: frozenset[int],
    limit: int,
) -> None:
    neighbours, popular = _model(all_histories, DEFAULT_PARAMETERS)
    recs = recommend(hers, neighbours, popular, exclude=exclude, limit=limit, now=NOW)
    allowed = {p.sku_id for p in popular} - exclude
    assert len(recs) >= min(limit, len(allowed))
    if not hers:
        assert all(r.reason is Reason.POPULAR for r in recs)


@given(histories, st.lists(baskets, max_size=4), sku_sets)
def test_the_same_question_gets_the_same_answer(
    all_histories: dict[int, list[Basket[int]]],
    hers: list[Basket[int]],
    exclude: frozenset[int],
) -> None:
    neighbours, popular = _model(all_histories, DEFAULT_PARAMETERS)
    first = recommend(hers, neighbours, popular, exclude=exclude, limit=10, now=NOW)
    again = recommend(list(reversed(hers)), neighbours, popular, exclude=exclude, limit=10, now=NOW)
    assert first == again


# --- offline evaluation ----------------------------------------------------------------------


def test_each_customers_latest_basket_is_held_out_and_one_basket_customers_left_out() -> None:
    histories = {
        "a": [basket(3, 1), basket(1, 2), basket(9, 3)],
        "b": [basket(5, 4)],
    }
    split = hold_out_last_basket(histories)
    assert split == {"a": HeldOut((basket(9, 3), basket(3, 1)), basket(1, 2))}


def test_hit_rate_counts_customers_with_a_hit_and_recall_the_share_of_her_basket_found() -> None:
    recommended = {"a": [1, 2, 3], "b": [7, 8], "c": [9]}
    held_out = {"a": frozenset({1, 5}), "b": frozenset({9}), "c": frozenset({9, 10, 11, 12})}
    scores = score_top_n(recommended, held_out, n=10)
    assert scores.customers == 3
    assert scores.hit_rate == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx((1 / 2 + 0 + 1 / 4) / 3)


def test_only_the_first_n_recommendations_count_and_empty_baskets_say_nothing() -> None:
    recommended = {"a": [1, 2, 3], "b": [1]}
    held_out = {"a": frozenset({3}), "b": frozenset()}
    scores = score_top_n(recommended, held_out, n=2)
    assert (scores.hit_rate, scores.recall, scores.customers) == (0.0, 0.0, 1)


def _habit_chain() -> dict[int, list[Basket[int]]]:
    """Sixty customers who buy their own staple again; thirty best sellers they never buy."""
    histories = {100 + n: [basket(3, 1000 + n % 30)] for n in range(60)}
    for n in range(60):
        staple, filler = 10_000 + n, 20_000 + n
        histories[n] = [
            basket(60, staple),
            basket(40, staple),
            basket(20, filler),
            basket(1, staple),
        ]
    return histories


def _crowd_chain() -> dict[int, list[Basket[int]]]:
    """Sixty customers with no habits: one-offs, then what everyone buys."""
    histories = {100 + n: [basket(3, 1000)] for n in range(40)}
    for n in range(60):
        one_offs = [10_000 + 20 * n + k for k in range(12)]
        histories[n] = [basket(30, *one_offs), basket(20, 20_000 + n), basket(1, 1000)]
    return histories


def test_a_chain_whose_customers_buy_again_keeps_a_blend_that_weighs_their_own_purchases() -> None:
    chosen, tried = choose_blend(_habit_chain(), parameters=DEFAULT_PARAMETERS)
    assert chosen.repeat_weight > 0 and chosen.popular_weight < 10
    assert tried[0].parameters == chosen
    assert tried[0].model.hit_rate == 1.0 and tried[0].model.customers == 60
    assert tried[0].popularity.hit_rate == 0.0
    assert len(tried) == len(BLENDS)


def test_a_chain_whose_customers_follow_the_crowd_keeps_a_blend_that_finds_the_best_seller() -> (
    None
):
    chosen, tried = choose_blend(_crowd_chain(), parameters=DEFAULT_PARAMETERS)
    assert tried[0].model.hit_rate == 1.0
    assert (chosen.repeat_weight, chosen.popular_weight) != (3.0, 0.0)
    own_purchases_only = next(
        e for e in tried if (e.parameters.repeat_weight, e.parameters.popular_weight) == (3.0, 0.0)
    )
    assert own_purchases_only.model.hit_rate == 0.0


def test_with_no_customer_to_check_the_parameters_stay_as_given() -> None:
    chosen, tried = choose_blend({1: [basket(1, 10)]}, parameters=DEFAULT_PARAMETERS)
    assert (chosen, tried) == (DEFAULT_PARAMETERS, [])


def test_too_few_customers_to_judge_keep_the_given_blend_and_are_still_evaluated() -> None:
    few = {k: v for k, v in _crowd_chain().items() if k < 10 or k >= 100}
    given = replace(DEFAULT_PARAMETERS, repeat_weight=1.5)
    chosen, tried = choose_blend(few, parameters=given)
    assert chosen == given
    assert given in [e.parameters for e in tried]
    assert len(tried) == len(BLENDS) + 1
    assert all(e.model.customers == 10 for e in tried)
    assert tried[0].model.hit_rate == 1.0  # a blend that would have found the best seller
