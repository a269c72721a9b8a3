"""Guides' recommendations: the offline build of the lists, and "what should I show her?"."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from cachetools import LRUCache
from sqlalchemy import ColumnElement, Table, and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from zhongtai.core.ids import new_id
from zhongtai.guides.recommendation_checks import (
    Evaluation,
    choose_blend,
)
from zhongtai.guides.recommendation_models import PopularSku as PopularSkuRow
from zhongtai.guides.recommendation_models import RecommendationBuild, SkuNeighbour
from zhongtai.guides.recommendation_rules import (
    DEFAULT_PARAMETERS,
    Basket,
    ModelParameters,
    Neighbour,
    PopularSku,
    Recommendation,
    build_neighbours,
    heaviest_skus,
    just_bought,
    popular_lists,
    recommend,
    sku_weights,
)
from zhongtai.inventory.models import StockBalance
from zhongtai.orders.kinds import LineKind, OrderStatus
from zhongtai.orders.models import Order, OrderLine

#: Purchases older than this are not read: at a 60-day half-life they weigh under 2 %.
LOOKBACK_DAYS = 365
#: Her most recent orders read when she is served: enough to know her, bounded to stay fast.
RECENT_ORDERS = 60
#: Rows read and written per round trip by the build.
CHUNK = 5_000

#: Goods that are hers or on their way to her. An order still open counts once paid; a try-on
#: reservation is paid only when she buys, so it counts once completed.
_HANDED_OVER = (OrderStatus.COMPLETED, OrderStatus.PARTIALLY_RETURNED)
_PAID_AND_OPEN = (
    OrderStatus.PAID,
    OrderStatus.ACCEPTED,
    OrderStatus.PICKING,
    OrderStatus.PACKED,
    OrderStatus.READY_FOR_PICKUP,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.SHIPPED,
)


def _bought(since: datetime, until: datetime) -> ColumnElement[bool]:
    """A member's order placed in [since, until] whose goods she bought and kept."""
    return and_(
        Order.member_id.is_not(None),
        Order.placed_at >= since,
        Order.placed_at <= until,
        or_(
            Order.status.in_(_HANDED_OVER),
            and_(Order.status.in_(_PAID_AND_OPEN), Order.paid_amount > 0),
        ),
    )


def _kept_goods() -> ColumnElement[bool]:
    """A line of goods she did not return in full."""
    return and_(
        OrderLine.kind == LineKind.GOODS,
        OrderLine.sku_id.is_not(None),
        OrderLine.returned_quantity < OrderLine.quantity,
    )


@dataclass(frozen=True)
class BuildSummary:
    build_id: uuid.UUID
    built_at: datetime
    history_since: datetime
    orders_read: int
    lines_read: int
    members: int
    skus: int
    neighbour_pairs: int
    popular_rows: int
    duration_ms: int
    parameters: ModelParameters
    #: The build's check of the parameters it kept on the chain's own purchases (None when no
    #: member had two orders to check with).
    check: Evaluation | None


@dataclass
class Purchase:
    """One order as the build reads it: whose, where, when, which SKUs."""

    member_id: uuid.UUID
    store_id: uuid.UUID
    at: datetime
    skus: set[uuid.UUID]


@dataclass
class PurchaseHistory:
    """Members' orders as the build reads them, by order id."""

    orders: dict[uuid.UUID, Purchase]
    lines: int = 0

    def by_member(self) -> dict[uuid.UUID, list[Basket[uuid.UUID]]]:
        """Each member's baskets, oldest first, each knowing its store."""
        histories: dict[uuid.UUID, list[Basket[uuid.UUID]]] = {}
        for p in sorted(self.orders.values(), key=_placed):
            basket = Basket(p.at, frozenset(p.skus), p.store_id)
            histories.setdefault(p.member_id, []).append(basket)
        return histories

    def skus(self) -> set[uuid.UUID]:
        return {sku for p in self.orders.values() for sku in p.skus}


def _placed(purchase: Purchase) -> datetime:
    return purchase.at


def read_purchases(session: Session, since: datetime, until: datetime) -> PurchaseHistory:
    """Every member's purchase placed in [since, until]: the SKUs she kept, order by order,
    read in chunks (a year of a chain's orders does not come back in one result set). Needs a
    transaction: on PostgreSQL the chunks come through a server-side cursor."""
    statement = (
        select(Order.id, Order.member_id, Order.store_id, Order.placed_at, OrderLine.sku_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(_bought(since, until), _kept_goods())
        .execution_options(yield_per=CHUNK)
    )
    history = PurchaseHistory(orders={})
    for chunk in session.execute(statement).partitions():
        for order_id, member_id, store_id, placed_at, sku_id in chunk:
            assert member_id is not None and sku_id is not None  # the query leaves out NULLs
            purchase = history.orders.get(order_id)
            if purchase is None:
                purchase = history.orders[order_id] = Purchase(
                    member_id, store_id, placed_at, set()
                )
            purchase.skus.add(sku_id)
            history.lines += 1
    return history


def _insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(table), list(rows[start : start + CHUNK]))


def _popular_rows(
    store_id: uuid.UUID | None, popular: Iterable[PopularSku[uuid.UUID]]
) -> list[dict[str, Any]]:
    return [
        {
            "id": new_id(),
            "store_id": store_id,
            "sku_id": p.sku_id,
            "score": p.score,
            "rank": rank,
            "buyers": p.buyers,
        }
        for rank, p in enumerate(popular, start=1)
    ]


def build_recommendations(
    session: Session,
    *,
    now: datetime,
    lookback_days: int = LOOKBACK_DAYS,
    top_k: int | None = None,
    parameters: ModelParameters = DEFAULT_PARAMETERS,
    choose: bool = True,
) -> BuildSummary:
    """Rebuilds every neighbour list and popularity list (chain-wide and per store) from the
    members' purchases of the ``lookback_days`` before ``now``, replacing the old lists in the
    caller's transaction (readers see the old lists until it commits), and records the build.

    First the build checks itself on the chain's own purchases: each member's last order held
    out, every blend of :data:`BLENDS` recommends from her earlier orders, and (``choose``)
    the blend that found most is kept for serving. ``top_k`` overrides the neighbours per SKU.
    """
    started = time.perf_counter()
    if top_k is not None:
        parameters = replace(parameters, top_k=top_k)
    if parameters.top_k < 1 or lookback_days < 1:
        raise ValueError("top_k and lookback_days must be at least 1")
    since = now - timedelta(days=lookback_days)
    history = read_purchases(session, since, now)
    histories = history.by_member()
    chosen, tried = choose_blend(histories, parameters=parameters)
    if choose:
        parameters = chosen
    check = next((e for e in tried if e.parameters == parameters), None)
    neighbours = build_neighbours(histories, now=now, parameters=parameters)
    neighbour_rows = [
        {
            "sku_id": sku_id,
            "neighbour_sku_id": n.sku_id,
            "score": n.score,
            "rank": rank,
            "support": n.support,
        }
        for sku_id, ranked in neighbours.items()
        for rank, n in enumerate(ranked, start=1)
    ]
    popular = popular_lists(histories, now=now, parameters=parameters)
    popular_rows = _popular_rows(None, popular.chain)
    for store_id, ranked in sorted(popular.stores.items(), key=lambda e: str(e[0])):
        popular_rows += _popular_rows(cast(uuid.UUID, store_id), ranked)
    session.execute(delete(SkuNeighbour))
    session.execute(delete(PopularSkuRow))
    _insert(session, SkuNeighbour.__table__, neighbour_rows)  # type: ignore[arg-type]
    _insert(session, PopularSkuRow.__table__, popular_rows)  # type: ignore[arg-type]
    duration_ms = round((time.perf_counter() - started) * 1000)
    build = RecommendationBuild(
        built_at=now,
        history_since=since,
        orders_read=len(history.orders),
        lines_read=history.lines,
        members=len(histories),
        skus=len(history.skus()),
        neighbour_pairs=len(neighbour_rows),
        popular_rows=len(popular_rows),
        parameters={**parameters.as_json(), "lookback_days": lookback_days},
        checked_members=check.model.customers if check else 0,
        hit_rate_at_10=check.model.hit_rate if check else None,
        popularity_hit_rate_at_10=check.popularity.hit_rate if check else None,
        duration_ms=duration_ms,
    )
    session.add(build)
    session.flush()
    return BuildSummary(
        build_id=build.id,
        built_at=now,
        history_since=since,
        orders_read=build.orders_read,
        lines_read=build.lines_read,
        members=build.members,
        skus=build.skus,
        neighbour_pairs=build.neighbour_pairs,
        popular_rows=build.popular_rows,
        duration_ms=duration_ms,
        parameters=parameters,
        check=check,
    )


def _latest_build(session: Session) -> tuple[uuid.UUID | None, ModelParameters]:
    """The build whose lists are in place (the latest made) and its parameters; no id and the
    defaults before any build."""
    row = session.execute(
        select(RecommendationBuild.id, RecommendationBuild.parameters)
        .order_by(RecommendationBuild.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None, DEFAULT_PARAMETERS
    return row.id, ModelParameters.from_json(row.parameters)


def latest_parameters(session: Session) -> ModelParameters:
    """The parameters serving uses: those of the latest build; the defaults before any."""
    return _latest_build(session)[1]


def _her_history(session: Session, member_id: uuid.UUID, now: datetime) -> list[Basket[uuid.UUID]]:
    """Her latest orders' SKUs, one basket per order (an index range scan on her orders)."""
    recent = (
        select(Order.id, Order.placed_at)
        .where(Order.member_id == member_id, _bought(now - timedelta(days=LOOKBACK_DAYS), now))
        .order_by(Order.placed_at.desc())
        .limit(RECENT_ORDERS)
        .subquery()
    )
    rows = session.execute(
        select(recent.c.id, recent.c.placed_at, OrderLine.sku_id)
        .join(OrderLine, OrderLine.order_id == recent.c.id)
        .where(_kept_goods())
    )
    baskets: dict[uuid.UUID, tuple[datetime, set[uuid.UUID]]] = {}
    for order_id, placed_at, sku_id in rows:
        baskets.setdefault(order_id, (placed_at, set()))[1].add(sku_id)
    return [Basket(at, frozenset(skus)) for at, skus in baskets.values()]


def _neighbours_of(
    session: Session, skus: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Neighbour[uuid.UUID]]]:
    if not skus:
        return {}
    rows = session.execute(
        select(
            SkuNeighbour.sku_id,
            SkuNeighbour.neighbour_sku_id,
            SkuNeighbour.score,
            SkuNeighbour.support,
        )
        .where(SkuNeighbour.sku_id.in_(skus))
        .order_by(SkuNeighbour.sku_id, SkuNeighbour.rank)
    )
    found: dict[uuid.UUID, list[Neighbour[uuid.UUID]]] = {}
    for sku_id, neighbour_id, score, support in rows:
        found.setdefault(sku_id, []).append(Neighbour(neighbour_id, score, support))
    return found


#: Popular lists per (build, store). A build's lists never change (the next build has a new
#: id), so a process reads a store's list once per build rather than on every request.
_popular_lists: LRUCache[tuple[uuid.UUID, uuid.UUID], list[PopularSku[uuid.UUID]]] = LRUCache(
    maxsize=4096
)
_popular_lock = threading.Lock()


def _popular_at(
    session: Session, build_id: uuid.UUID | None, store_id: uuid.UUID
) -> list[PopularSku[uuid.UUID]]:
    """The store's popular list, then the chain's (for a store too new to have its own)."""
    if build_id is not None:
        with _popular_lock:
            cached = _popular_lists.get((build_id, store_id))
        if cached is not None:
            return cached
    rows = session.execute(
        select(
            PopularSkuRow.store_id, PopularSkuRow.sku_id, PopularSkuRow.score, PopularSkuRow.buyers
        )
        .where(or_(PopularSkuRow.store_id == store_id, PopularSkuRow.store_id.is_(None)))
        .order_by(PopularSkuRow.rank)
    ).all()
    ordered = [r for r in rows if r.store_id is not None] + [r for r in rows if r.store_id is None]
    popular = [PopularSku(r.sku_id, r.score, r.buyers) for r in ordered]
    if build_id is not None:  # before any build there is nothing to remember
        with _popular_lock:
            _popular_lists[(build_id, store_id)] = popular
    return popular


def _in_stock(
    session: Session, store_id: uuid.UUID, skus: Iterable[uuid.UUID]
) -> frozenset[uuid.UUID]:
    """Of ``skus``, those with stock to promise at the store (ATP = on hand - reserved -
    safety stock > 0); a SKU the store does not carry has none."""
    wanted = sorted(set(skus))
    if not wanted:
        return frozenset()
    atp = StockBalance.on_hand - StockBalance.reserved - StockBalance.safety_stock
    return frozenset(
        session.scalars(
            select(StockBalance.sku_id).where(
                StockBalance.location_id == store_id,
                StockBalance.sku_id.in_(wanted),
                atp > 0,
            )
        )
    )


def recommend_for_member(
    session: Session,
    member_id: uuid.UUID,
    *,
    store_id: uuid.UUID,
    limit: int = 10,
    now: datetime,
    parameters: ModelParameters | None = None,
) -> list[Recommendation[uuid.UUID]]:
    """What a guide at ``store_id`` should show the member now, best first: what she buys
    again, SKUs bought with what she bought, the store's popular SKUs, as the latest build
    blended them (or as ``parameters`` say) — never what she just bought, never what the store
    cannot sell her now. A few indexed reads: the latest build, her latest orders, her SKUs'
    neighbours, the popular lists (once per build and store in a process), the store's stock
    of the best candidates."""
    build_id, latest = _latest_build(session)
    parameters = parameters or latest
    history = _her_history(session, member_id, now)
    exclude = just_bought(history, now=now, days=parameters.just_bought_days)
    weights = sku_weights(history, now=now, half_life_days=parameters.half_life_days)
    seeds = [sku for sku, _ in heaviest_skus(weights, parameters.seed_skus)]
    neighbours = _neighbours_of(session, seeds)
    popular = _popular_at(session, build_id, store_id)
    # Everything ranked first (stock does not change a score), then stock read for the best
    # few only: one small read in the usual case instead of one for every candidate.
    everything = len(weights) + len(popular) + sum(len(n) for n in neighbours.values())
    ranked = recommend(
        history,
        neighbours,
        popular,
        exclude=exclude,
        limit=everything,
        now=now,
        parameters=parameters,
    )
    shown: list[Recommendation[uuid.UUID]] = []
    step = max(2 * limit, 20)
    for start in range(0, len(ranked), step):
        part = ranked[start : start + step]
        stocked = _in_stock(session, store_id, [r.sku_id for r in part])
        shown += [r for r in part if r.sku_id in stocked][: limit - len(shown)]
        if len(shown) >= limit:
            break
    return shown
