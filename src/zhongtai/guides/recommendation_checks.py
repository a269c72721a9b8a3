"""Checking recommendations offline, without anyone's help (pure): hold out each customer's
last basket, recommend from what came before, count hits and recall at N against the
popularity baseline — and choose the blend a build serves by the same check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic

from zhongtai.guides.recommendation_rules import (
    Basket,
    K,
    ModelParameters,
    Neighbour,
    PopularLists,
    S,
    build_neighbours,
    just_bought,
    popular_lists,
    recommend,
)


@dataclass(frozen=True)
class HeldOut(Generic[S]):
    """A customer's history split for evaluation: what she had bought, and what she bought next."""

    history: tuple[Basket[S], ...]
    next_basket: Basket[S]


def hold_out_last_basket(histories: Mapping[K, Sequence[Basket[S]]]) -> dict[K, HeldOut[S]]:
    """Each customer with at least two baskets: her last one (by time; of equal times, the later
    in her sequence) held out, the earlier ones kept."""
    split: dict[K, HeldOut[S]] = {}
    for key, history in histories.items():
        if len(history) < 2:
            continue
        ordered = sorted(enumerate(history), key=_basket_time_then_position)
        split[key] = HeldOut(tuple(b for _, b in ordered[:-1]), ordered[-1][1])
    return split


def _basket_time_then_position(entry: tuple[int, Basket[S]]) -> tuple[datetime, int]:
    return entry[1].at, entry[0]


@dataclass(frozen=True)
class TopNScores:
    #: Share of customers with at least one recommended SKU in the basket held out.
    hit_rate: float
    #: Mean over customers of |recommended ∩ held out| / |held out|.
    recall: float
    customers: int


def score_top_n(
    recommended: Mapping[K, Sequence[S]], held_out: Mapping[K, frozenset[S]], *, n: int = 10
) -> TopNScores:
    """Hit rate and recall of the first ``n`` recommendations against what each customer bought
    next; customers whose next basket is empty say nothing and are left out."""
    hits = 0
    recall = 0.0
    customers = 0
    for key, actual in held_out.items():
        if not actual:
            continue
        found = len(set(recommended.get(key, ())[:n]) & actual)
        customers += 1
        hits += found > 0
        recall += found / len(actual)
    if customers == 0:
        return TopNScores(0.0, 0.0, 0)
    return TopNScores(hits / customers, recall / customers, customers)


@dataclass(frozen=True)
class Evaluation:
    """The model against the popular list on the same held-out baskets."""

    parameters: ModelParameters
    model: TopNScores
    popularity: TopNScores


#: The blends a build tries on its own chain's purchases before it keeps one: how much her own
#: earlier purchases and the popular list weigh against co-purchase. Real grocery orders
#: (Instacart) want her own purchases; baskets with no personal pattern (the demo chain's) want
#: the popular list.
BLENDS: tuple[tuple[float, float], ...] = (
    (3.0, 0.0),
    (3.0, 1.0),
    (3.0, 10.0),
    (0.0, 0.0),
    (0.0, 1.0),
    (0.0, 10.0),
)


def evaluate_split(
    split: Mapping[K, HeldOut[S]],
    neighbours: Mapping[S, Sequence[Neighbour[S]]],
    popular: PopularLists[S],
    parameters: ModelParameters,
    *,
    limit: int = 10,
) -> Evaluation:
    """Each customer served at the moment of her held-out basket, at its store, excluding what
    she had just bought by then; the popular list with the same exclusion is the baseline."""
    model: dict[K, list[S]] = {}
    baseline: dict[K, list[S]] = {}
    for key, held in split.items():
        at = held.next_basket.at
        exclude = just_bought(held.history, now=at, days=parameters.just_bought_days)
        fill = popular.at(held.next_basket.store)
        recs = recommend(
            held.history,
            neighbours,
            fill,
            exclude=exclude,
            limit=limit,
            now=at,
            parameters=parameters,
        )
        model[key] = [r.sku_id for r in recs]
        plain = recommend((), {}, fill, exclude=exclude, limit=limit, now=at)
        baseline[key] = [r.sku_id for r in plain]
    actual = {key: held.next_basket.skus for key, held in split.items()}
    return Evaluation(
        parameters,
        score_top_n(model, actual, n=limit),
        score_top_n(baseline, actual, n=limit),
    )


def training_split(
    histories: Mapping[K, Sequence[Basket[S]]],
) -> tuple[dict[K, HeldOut[S]], dict[K, Sequence[Basket[S]]], datetime]:
    """(each customer's last basket held out; every basket but those, to learn from; the time
    of the latest of them, the moment the model is built)."""
    split = hold_out_last_basket(histories)
    train = {k: (split[k].history if k in split else v) for k, v in histories.items()}
    moments = [b.at for history in train.values() for b in history]
    return split, train, max(moments) if moments else datetime.min.replace(tzinfo=UTC)


def choose_blend(
    histories: Mapping[K, Sequence[Basket[S]]],
    *,
    parameters: ModelParameters,
    blends: Sequence[tuple[float, float]] = BLENDS,
    min_customers: int = 50,
    max_customers: int = 2_000,
) -> tuple[ModelParameters, list[Evaluation]]:
    """The blend (repeat weight, popular weight) that finds most of the customers' last baskets
    from their earlier ones, and every blend's evaluation, best first. At most
    ``max_customers`` are served (every n-th, so the check stays quick on a large chain). With
    fewer than ``min_customers`` to check, a choice would be chance: the parameters stay as
    given (and are evaluated too, if they are not one of the blends)."""
    split, train, now = training_split(histories)
    if len(split) > max_customers:
        step = len(split) / max_customers
        keys = sorted(split)
        split = {keys[int(i * step)]: split[keys[int(i * step)]] for i in range(max_customers)}
    if not split:
        return parameters, []
    neighbours = build_neighbours(train, now=now, parameters=parameters)
    popular = popular_lists(train, now=now, parameters=parameters)
    candidates = [replace(parameters, repeat_weight=r, popular_weight=p) for r, p in blends]
    if parameters not in candidates:
        candidates.append(parameters)
    tried = [evaluate_split(split, neighbours, popular, c) for c in candidates]
    # Best hit rate, then recall; the earlier blend on a tie (the list says which comes first).
    ranked = [
        e
        for _, e in sorted(
            enumerate(tried), key=lambda e: (-e[1].model.hit_rate, -e[1].model.recall, e[0])
        )
    ]
    if len(split) < min_customers:
        return parameters, ranked
    return ranked[0].parameters, ranked
