"""What a guide should show a member: co-purchase neighbours, popularity, her own purchases,
blended and ranked (pure; the offline check is in recommendation_checks)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Container, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

_LN2 = math.log(2)


class _Sortable(Hashable, Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


#: A SKU id: a UUID in the product, a plain int in the offline evaluation.
S = TypeVar("S", bound=_Sortable)
#: A member key: a UUID in the product, a plain int in the offline evaluation.
K = TypeVar("K", bound=_Sortable)


class CoOccurrence(StrEnum):
    """What counts as bought together."""

    #: The same customer bought both, in any of her baskets (what "customers who bought X also
    #: bought Y" means; strongest where customers come back often).
    CUSTOMER = "customer"
    #: Both were in the same basket (what is bought on the same trip).
    BASKET = "basket"


class Reason(StrEnum):
    #: Customers who bought ``because_of`` (which she bought) also bought this.
    BOUGHT_WITH = "bought_with"
    #: She bought it before, often or lately, though not just now: time to buy it again.
    BOUGHT_BEFORE = "bought_before"
    #: Among the most bought lately: fills the list when her history says too little.
    POPULAR = "popular"


@dataclass(frozen=True)
class Basket(Generic[S]):
    """The distinct SKUs of one order, when it was placed, and (if known) at which store."""

    at: datetime
    skus: frozenset[S]
    store: Hashable | None = None


@dataclass(frozen=True)
class ModelParameters:
    """The knobs of the model; a build records them so that builds can be compared."""

    #: Neighbours kept per SKU.
    top_k: int = 50
    co_occurrence: CoOccurrence = CoOccurrence.BASKET
    #: Score of a pair = co-weight / (norm_i ** (1 - alpha) * norm_j ** alpha), norms being the
    #: squared weights of each SKU's buyers: 0.5 is the cosine; above it, popular neighbours
    #: are damped.
    alpha: float = 0.3
    #: A purchase this many days old weighs half as much as one made today.
    half_life_days: float = 60.0
    #: Pairs seen fewer times than this are chance, not a pattern.
    min_support: int = 2
    #: Customer-level pairs take a customer's most recently bought SKUs only: the cost is
    #: quadratic in them, and a customer who bought everything says little about any one pair.
    max_skus_per_customer: int = 300
    #: Entries of each popularity list.
    popular_limit: int = 100
    #: "Just bought": her last order and whatever she bought in this many days before now.
    just_bought_days: int = 7
    #: Her SKUs whose neighbours are read when she is served, the heaviest in her history first:
    #: what keeps serving a few indexed reads however long her history.
    seed_skus: int = 30
    #: Weight of her own earlier purchases of a SKU against what its neighbours say: groceries
    #: are bought again and again, and what she buys regularly is the strongest hint there is.
    repeat_weight: float = 3.0
    #: Weight of a SKU's popularity against what her history says: the most popular SKU adds
    #: all of it, the last of the popular list almost nothing.
    popular_weight: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "co_occurrence": self.co_occurrence.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelParameters:
        """The parameters a build recorded; what it did not record keeps today's default."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "co_occurrence" in values:
            values["co_occurrence"] = CoOccurrence(values["co_occurrence"])
        return cls(**values)


DEFAULT_PARAMETERS = ModelParameters()


@dataclass(frozen=True)
class Neighbour(Generic[S]):
    sku_id: S
    score: float
    #: Customers (or baskets) that had both.
    support: int


@dataclass(frozen=True)
class PopularSku(Generic[S]):
    sku_id: S
    score: float
    #: Distinct customers who bought it.
    buyers: int


@dataclass(frozen=True)
class Recommendation(Generic[S]):
    sku_id: S
    score: float
    reason: Reason
    #: The SKU she bought that led here (``bought_with`` only): what the guide can say.
    because_of: S | None = None


def decay(age: timedelta, half_life_days: float) -> float:
    """The weight of a purchase ``age`` old: 1 today, 1/2 after one half-life; future = today."""
    days = max(age.total_seconds(), 0.0) / 86_400
    return math.exp(-_LN2 * days / half_life_days)


def sku_weights(
    history: Iterable[Basket[S]], *, now: datetime, half_life_days: float
) -> dict[S, float]:
    """How much each SKU she bought says about her now: the decayed weight of each time she
    bought it, summed (bought often and lately weighs most)."""
    weights: dict[S, float] = {}
    # Summed oldest first: the same baskets in any order give the very same floats.
    for basket in sorted(history, key=_basket_time):
        w = decay(now - basket.at, half_life_days)
        for sku in basket.skus:
            weights[sku] = weights.get(sku, 0.0) + w
    return weights


def _basket_time(basket: Basket[S]) -> datetime:
    return basket.at


def _customer_rows(
    history: Sequence[Basket[S]], now: datetime, parameters: ModelParameters
) -> list[dict[S, float]]:
    """The weighted SKU sets one customer contributes to the pairs."""
    if parameters.co_occurrence is CoOccurrence.BASKET:
        return [
            dict.fromkeys(b.skus, decay(now - b.at, parameters.half_life_days))
            for b in history
            if len(b.skus) > 1
        ]
    # Per SKU the weight of her latest purchase of it: a pair says "she bought both", however
    # often; her most recent SKUs are kept when she bought more than the cap.
    latest: dict[S, datetime] = {}
    for basket in history:
        for sku in basket.skus:
            if sku not in latest or basket.at > latest[sku]:
                latest[sku] = basket.at
    kept = heapq.nlargest(parameters.max_skus_per_customer, latest.items(), key=_by_time_then_id)
    return [{sku: decay(now - at, parameters.half_life_days) for sku, at in kept}]


def _by_time_then_id(item: tuple[S, datetime]) -> tuple[datetime, S]:
    return item[1], item[0]


def build_neighbours(
    histories: Mapping[K, Sequence[Basket[S]]], *, now: datetime, parameters: ModelParameters
) -> dict[S, tuple[Neighbour[S], ...]]:
    """Each SKU's ``top_k`` neighbours by normalised, recency-weighted co-purchase, best first
    (ties by SKU id, so the same histories always give the same lists)."""
    co: dict[S, dict[S, float]] = {}
    support: dict[S, dict[S, int]] = {}
    norm: dict[S, float] = {}
    # Customers in key order: the same histories in any order give the very same floats.
    for key in sorted(histories):
        for row in _customer_rows(sorted(histories[key], key=_basket_time), now, parameters):
            items = sorted(row.items(), key=_by_id)
            for sku, w in items:
                norm[sku] = norm.get(sku, 0.0) + w * w
            for index, (i, wi) in enumerate(items):
                co_i = co.setdefault(i, {})
                support_i = support.setdefault(i, {})
                # Only i < j is counted: the pair's weight is symmetric, the score is not.
                for j, wj in items[index + 1 :]:
                    co_i[j] = co_i.get(j, 0.0) + wi * wj
                    support_i[j] = support_i.get(j, 0) + 1
    alpha = parameters.alpha
    candidates: dict[S, list[tuple[float, S, int]]] = {}
    for i, row_i in co.items():
        support_i = support[i]
        for j, weight in row_i.items():
            n = support_i[j]
            if n < parameters.min_support or weight <= 0.0:
                continue
            # From i, recommending j: damp j's popularity by alpha, i's by the rest.
            score_ij = weight / (norm[i] ** (1 - alpha) * norm[j] ** alpha)
            score_ji = weight / (norm[j] ** (1 - alpha) * norm[i] ** alpha)
            candidates.setdefault(i, []).append((score_ij, j, n))
            candidates.setdefault(j, []).append((score_ji, i, n))
    neighbours: dict[S, tuple[Neighbour[S], ...]] = {}
    for sku in sorted(candidates):
        best = heapq.nsmallest(parameters.top_k, candidates[sku], key=_best_first)
        neighbours[sku] = tuple(Neighbour(j, score, n) for score, j, n in best)
    return neighbours


def _by_id(item: tuple[S, float]) -> S:
    return item[0]


def _best_first(entry: tuple[float, S, int]) -> tuple[float, S]:
    return -entry[0], entry[1]


def rank_popular(
    histories: Iterable[Sequence[Basket[S]]],
    *,
    now: datetime,
    half_life_days: float,
    limit: int,
) -> tuple[PopularSku[S], ...]:
    """The ``limit`` SKUs bought by the most customers lately: each customer counts once per SKU,
    weighted by how recently she last bought it (so one heavy buyer does not make a bestseller)."""
    score: dict[S, float] = {}
    buyers: dict[S, int] = {}
    for history in histories:
        latest: dict[S, datetime] = {}
        for basket in history:
            for sku in basket.skus:
                if sku not in latest or basket.at > latest[sku]:
                    latest[sku] = basket.at
        for sku, at in latest.items():
            score[sku] = score.get(sku, 0.0) + decay(now - at, half_life_days)
            buyers[sku] = buyers.get(sku, 0) + 1
    best = heapq.nsmallest(
        limit, ((s, sku) for sku, s in score.items() if s > 0.0), key=_popular_first
    )
    return tuple(PopularSku(sku, s, buyers[sku]) for s, sku in best)


def _popular_first(entry: tuple[float, S]) -> tuple[float, S]:
    return -entry[0], entry[1]


@dataclass(frozen=True)
class PopularLists(Generic[S]):
    """The chain's popular SKUs and each store's."""

    chain: tuple[PopularSku[S], ...]
    stores: Mapping[Hashable, tuple[PopularSku[S], ...]]

    def at(self, store: Hashable | None) -> list[PopularSku[S]]:
        """What fills a list at ``store``: its own popular SKUs, then the chain's (a store too
        new to have a list of its own gets the chain's)."""
        own = self.stores.get(store, ()) if store is not None else ()
        return [*own, *self.chain]


def popular_lists(
    histories: Mapping[K, Sequence[Basket[S]]], *, now: datetime, parameters: ModelParameters
) -> PopularLists[S]:
    """Popularity across the chain and at each store the baskets name."""
    at_store: dict[Hashable, dict[K, list[Basket[S]]]] = {}
    for key in sorted(histories):
        for basket in histories[key]:
            if basket.store is not None:
                at_store.setdefault(basket.store, {}).setdefault(key, []).append(basket)

    def rank(customers: Iterable[Sequence[Basket[S]]]) -> tuple[PopularSku[S], ...]:
        return rank_popular(
            customers,
            now=now,
            half_life_days=parameters.half_life_days,
            limit=parameters.popular_limit,
        )

    return PopularLists(
        chain=rank(histories[key] for key in sorted(histories)),
        stores={store: rank(members.values()) for store, members in at_store.items()},
    )


def just_bought(history: Sequence[Basket[S]], *, now: datetime, days: int) -> frozenset[S]:
    """What she has at home: her last order, and everything bought in the ``days`` before now.

    A guide gains nothing by showing what she carried home last time, however long ago; and a
    weekly shopper's previous trip is as fresh as her last one.
    """
    if not history:
        return frozenset()
    last = max(b.at for b in history)
    since = min(last, now - timedelta(days=days))
    return frozenset(sku for b in history if b.at >= since for sku in b.skus)


def heaviest_skus(weights: Mapping[S, float], count: int) -> list[tuple[S, float]]:
    """The ``count`` heaviest SKUs with their weights, heaviest first (ties by id): the SKUs
    whose neighbours are read for her."""
    return heapq.nsmallest(count, weights.items(), key=_heaviest_first)


def _heaviest_first(item: tuple[S, float]) -> tuple[float, S]:
    return -item[1], item[0]


class _Everything:
    """Stock known for nothing: every SKU counts as available."""

    def __contains__(self, item: object) -> bool:
        return True


EVERYTHING: Container[Any] = _Everything()


def recommend(
    history: Sequence[Basket[S]],
    neighbours: Mapping[S, Sequence[Neighbour[S]]] | Callable[[S], Sequence[Neighbour[S]]],
    popular: Sequence[PopularSku[S]],
    *,
    exclude: Container[S],
    available: Container[S] = EVERYTHING,
    limit: int = 10,
    now: datetime,
    parameters: ModelParameters = DEFAULT_PARAMETERS,
) -> list[Recommendation[S]]:
    """Up to ``limit`` SKUs for her, best first, never one in ``exclude`` or not ``available``.

    A SKU scores, for each of her heaviest SKUs it neighbours, that SKU's weight in her history
    times the pair's score; a SKU she bought before (but not just now) adds ``repeat_weight``
    times its own weight; a popular SKU adds ``popular_weight`` scaled down by its rank in the
    popular list. The largest single part names the reason. Popular SKUs then fill what is
    left, in their order, so a member without history gets the popular list.
    """
    if limit <= 0:
        return []
    lookup = neighbours.get if isinstance(neighbours, Mapping) else neighbours
    weights = sku_weights(history, now=now, half_life_days=parameters.half_life_days)
    scores: dict[S, float] = {}
    #: Per candidate its largest part: (gain, why, the SKU of hers behind it).
    strongest: dict[S, tuple[float, Reason, S | None]] = {}

    def add(sku: S, gain: float, reason: Reason, because_of: S | None) -> None:
        if sku in exclude or sku not in available or not gain > 0:
            return
        scores[sku] = scores.get(sku, 0.0) + gain
        best = strongest.get(sku)
        if best is None or gain > best[0]:
            strongest[sku] = (gain, reason, because_of)

    for bought, weight in heaviest_skus(weights, parameters.seed_skus):
        for n in lookup(bought) or ():
            add(n.sku_id, weight * n.score, Reason.BOUGHT_WITH, bought)
    if parameters.repeat_weight > 0:
        for sku, weight in sorted(weights.items(), key=_by_id):
            add(sku, parameters.repeat_weight * weight, Reason.BOUGHT_BEFORE, None)
    if parameters.popular_weight > 0:
        # By rank, not by score: the list may join a store's popular SKUs and the chain's,
        # whose scores count different crowds.
        ranked = list(dict.fromkeys(p.sku_id for p in popular))
        for rank, sku in enumerate(ranked):
            gain = parameters.popular_weight * (1 - rank / len(ranked))
            add(sku, gain, Reason.POPULAR, None)
    chosen = heapq.nsmallest(
        limit, ((s, sku) for sku, s in scores.items() if math.isfinite(s)), key=_popular_first
    )
    result = [
        Recommendation(sku, score, strongest[sku][1], strongest[sku][2]) for score, sku in chosen
    ]
    taken = {r.sku_id for r in result}
    for entry in popular:
        if len(result) >= limit:
            break
        sku = entry.sku_id
        if sku in taken or sku in exclude or sku not in available:
            continue
        taken.add(sku)
        result.append(Recommendation(sku, entry.score, Reason.POPULAR, None))
    return result
