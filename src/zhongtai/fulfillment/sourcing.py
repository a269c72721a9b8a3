"""Which store (or stores, for a parcel) fulfils a basket, and why each candidate was or was not."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import combinations
from types import MappingProxyType

from zhongtai.core.clock import as_utc
from zhongtai.core.errors import InvalidInput
from zhongtai.fulfillment.promise import (
    BasketLine,
    GeoPoint,
    Promise,
    StoreCandidate,
    promise_for_workload,
)
from zhongtai.orders.kinds import FulfillmentType, LineKind
from zhongtai.stores.rules import EARTH_MEAN_RADIUS_M

DEFAULT_TARGET_MINUTES: Mapping[FulfillmentType, int] = MappingProxyType(
    {FulfillmentType.DELIVERY: 30}
)
#: Ship splits try every set of locations up to this many combinations, then go greedy.
SPLIT_SEARCH_BUDGET = 20_000


class Reason(StrEnum):
    """Why a candidate cannot fulfil; stable strings for clients."""

    NOT_CHOSEN_STORE = "not_chosen_store"
    TYPE_NOT_ENABLED = "type_not_enabled"
    OUTSIDE_RADIUS = "outside_radius"
    MISSING_SERVICE = "missing_service"
    MISSING_STOCK = "missing_stock"
    CLOSED = "closed"  # closed, or closing before the order is ready, with no next opening known


@dataclass(frozen=True)
class SourcingRequest:
    """What to source. ``preferred_store_id`` (the store a customer picked for pickup or a
    try-on, or the till's store) makes every other store ineligible. ``target_minutes`` None
    takes ``DEFAULT_TARGET_MINUTES`` for the type; types without a default have no target."""

    fulfillment_type: FulfillmentType
    lines: Sequence[BasketLine]
    address: GeoPoint | None = None
    preferred_store_id: uuid.UUID | None = None
    target_minutes: int | None = None

    @property
    def target(self) -> int | None:
        if self.target_minutes is not None:
            return self.target_minutes
        return DEFAULT_TARGET_MINUTES.get(self.fulfillment_type)


@dataclass(frozen=True)
class Verdict:
    """One candidate's outcome: eligible and ranked, or the reasons it is not."""

    store_id: uuid.UUID
    code: str
    eligible: bool
    reasons: tuple[Reason, ...]
    explanation: str
    distance_m: float | None
    promise: Promise | None
    rank: int | None = None  # 1 = best, among the eligible
    chosen: bool = False


@dataclass(frozen=True)
class Assignment:
    """What one location fulfils: goods quantities by SKU, services by name, and its promise."""

    store_id: uuid.UUID
    code: str
    quantities: Mapping[uuid.UUID, int]
    services: frozenset[str]
    promise: Promise
    distance_m: float | None


@dataclass(frozen=True)
class SourcingDecision:
    """The choice (one assignment, or several for a split parcel) and every verdict.

    ``promise`` is the latest promise among the assignments (a parcel is complete when its last
    part is). ``within_target`` is True only when a choice exists and its rounded-up minutes are
    within the target (or there is no target).
    """

    fulfillment_type: FulfillmentType
    assignments: tuple[Assignment, ...]
    verdicts: tuple[Verdict, ...]
    promise: Promise | None
    target_minutes: int | None
    within_target: bool
    summary: str

    @property
    def found(self) -> bool:
        return bool(self.assignments)

    @property
    def store_id(self) -> uuid.UUID | None:
        """The fulfilling store; the first (best-ranked) one of a split."""
        return self.assignments[0].store_id if self.assignments else None

    @property
    def split(self) -> bool:
        return len(self.assignments) > 1


@dataclass
class _Basket:
    """The request boiled down once: demand by SKU (duplicate lines merged) and services."""

    need: dict[uuid.UUID, int]
    services: frozenset[str]
    goods_lines: int
    lines_total: int = field(init=False)

    def __post_init__(self) -> None:
        self.lines_total = len(self.need) + len(self.services)


@dataclass
class _Eligible:
    store: StoreCandidate
    distance: float | None
    promise: Promise
    note: str = ""  # ship: what part of the basket the location holds

    def key(self) -> tuple[int, float, int, str, uuid.UUID]:
        # Customers see whole minutes, so two stores promising the same minute go by distance.
        return (
            self.promise.minutes,
            self.distance or 0.0,
            self.store.open_tasks,
            self.store.code,
            self.store.store_id,
        )


def choose_stores(
    request: SourcingRequest, candidates: Sequence[StoreCandidate], now: datetime
) -> SourcingDecision:
    """Choose the fulfilling store(s) and explain the decision for every candidate.

    Eligible: the type is enabled; for delivery, the address is within the delivery radius;
    the store offers the basket's services; it holds the whole basket; it can promise (open, or
    a known next opening). Delivery, pickup, reserve_try and in_store never split. ``ship`` may
    split: whole lines go to the fewest locations (then the latest part's promise, then the
    best-ranked locations); a SKU line is split across locations only when no single eligible
    location holds all of it, drawing first on locations already chosen. Ranking: promise
    minutes, then distance, then picking backlog, then store code: deterministic. When no store
    meets the target the best promise (or slot) is still chosen, with ``within_target`` False.
    """
    now = as_utc(now)
    basket = _basket(request)
    ftype = request.fulfillment_type
    ship = ftype is FulfillmentType.SHIP
    origin = None if request.address is None else _Origin(request.address)
    eligible: list[_Eligible] = []
    rejected: list[Verdict] = []
    for store in candidates:
        result = _judge(store, request, basket, origin, now, ship=ship)
        if isinstance(result, Verdict):
            rejected.append(result)
        else:
            eligible.append(result)
    eligible.sort(key=_Eligible.key)
    assignments = _plan_split(eligible, basket, now, ftype) if ship else _single(eligible, basket)
    chosen_ids = {a.store_id for a in assignments}
    verdicts = [
        Verdict(
            store_id=e.store.store_id,
            code=e.store.code,
            eligible=True,
            reasons=(),
            explanation=_eligible_sentence(e, rank, len(eligible), ftype),
            distance_m=e.distance,
            promise=e.promise,
            rank=rank,
            chosen=e.store.store_id in chosen_ids,
        )
        for rank, e in enumerate(eligible, start=1)
    ]
    rejected.sort(key=lambda v: (v.distance_m or 0.0, v.code, v.store_id))
    promise = max((a.promise for a in assignments), key=lambda p: p.deliver_by, default=None)
    target = request.target
    within = promise is not None and (target is None or promise.minutes <= target)
    return SourcingDecision(
        fulfillment_type=ftype,
        assignments=tuple(assignments),
        verdicts=(*verdicts, *rejected),
        promise=promise,
        target_minutes=target,
        within_target=within,
        summary=_summary(assignments, promise, target, within, rejected, ftype),
    )


def _basket(request: SourcingRequest) -> _Basket:
    if not request.lines:
        raise InvalidInput.field("lines", "must hold at least one line")
    if request.fulfillment_type is FulfillmentType.DELIVERY and request.address is None:
        raise InvalidInput.field("address", "is required for delivery")
    if request.target_minutes is not None and request.target_minutes <= 0:
        raise InvalidInput.field("target_minutes", "must be positive")
    need: dict[uuid.UUID, int] = {}
    services: set[str] = set()
    goods_lines = 0
    for i, line in enumerate(request.lines):
        if line.quantity <= 0:
            raise InvalidInput.field(f"lines[{i}].quantity", "must be positive")
        if line.kind is LineKind.SERVICE:
            if not line.service:
                raise InvalidInput.field(f"lines[{i}].service", "names the service to perform")
            services.add(line.service)
        else:
            goods_lines += 1
            need[line.sku_id] = need.get(line.sku_id, 0) + line.quantity
    return _Basket(need, frozenset(services), goods_lines)


def _judge(
    store: StoreCandidate,
    request: SourcingRequest,
    basket: _Basket,
    origin: _Origin | None,
    now: datetime,
    *,
    ship: bool,
) -> _Eligible | Verdict:
    """One candidate. The cheap checks (choice, type, radius) run first, so that far or
    disabled stores never reach the stock and promise work; the distance itself is kept for
    every candidate because the verdict reports it."""
    ftype = request.fulfillment_type
    distance = None if origin is None else origin.distance_to(store)
    if request.preferred_store_id is not None and store.store_id != request.preferred_store_id:
        return _rejected(store, distance, [(Reason.NOT_CHOSEN_STORE, "not the chosen store")])
    problems: list[tuple[Reason, str]] = []
    if ftype not in store.fulfillment_types:
        problems.append((Reason.TYPE_NOT_ENABLED, f"{ftype.value} is not enabled here"))
    if ftype is FulfillmentType.DELIVERY:
        radius = store.delivery_radius_m
        if radius is None or distance is None or distance > radius:
            limit = "no delivery radius" if radius is None else f"its {_km(radius)} radius"
            problems.append((Reason.OUTSIDE_RADIUS, f"{_km(distance)} away, beyond {limit}"))
    if problems:
        return _rejected(store, distance, problems)

    missing_services = sorted(basket.services - store.services)
    stock = store.stock
    held = [sku for sku, qty in basket.need.items() if stock.get(sku, 0) >= qty]
    note = ""
    if ship:
        # A parcel may be split: a location is useful as soon as it holds any of the basket.
        partial = [sku for sku in basket.need if stock.get(sku, 0) > 0]
        offered = basket.services & store.services
        if not partial and not offered:
            if basket.need:
                problems.append((Reason.MISSING_STOCK, "holds none of the basket"))
            if missing_services:
                problems.append((Reason.MISSING_SERVICE, f"lacks {', '.join(missing_services)}"))
        else:
            note = f"holds {len(held) + len(offered)} of {basket.lines_total} lines in full"
        goods_lines = len(partial)
        services: frozenset[str] = offered
    else:
        if missing_services:
            problems.append((Reason.MISSING_SERVICE, f"lacks {', '.join(missing_services)}"))
        short = len(basket.need) - len(held)
        if short:
            problems.append((Reason.MISSING_STOCK, f"short of {short} of {len(basket.need)} SKUs"))
        goods_lines = basket.goods_lines
        services = basket.services
    if problems:
        return _rejected(store, distance, problems)

    promise = promise_for_workload(
        store,
        goods_lines=goods_lines,
        services=services,
        distance=distance,
        now=now,
        fulfillment_type=ftype,
    )
    if promise is None:
        why = "closed" if not store.open_now else "closes before the order is ready"
        return _rejected(store, distance, [(Reason.CLOSED, f"{why}, no next opening known")])
    return _Eligible(store, distance, promise, note)


class _Origin:
    """The customer's address, with its trigonometry done once for all candidates."""

    def __init__(self, address: GeoPoint) -> None:
        self.phi = math.radians(address.latitude)
        self.lam = math.radians(address.longitude)
        self.cos_phi = math.cos(self.phi)

    def distance_to(self, store: StoreCandidate) -> float:
        # stores.rules.distance_m's haversine, inlined: it runs for every candidate of a call.
        phi = math.radians(store.latitude)
        h = (
            math.sin((phi - self.phi) / 2) ** 2
            + self.cos_phi
            * math.cos(phi)
            * math.sin((math.radians(store.longitude) - self.lam) / 2) ** 2
        )
        return 2 * EARTH_MEAN_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _rejected(
    store: StoreCandidate, distance: float | None, problems: list[tuple[Reason, str]]
) -> Verdict:
    return Verdict(
        store_id=store.store_id,
        code=store.code,
        eligible=False,
        reasons=tuple(reason for reason, _ in problems),
        explanation=f"{store.code}: " + "; ".join(text for _, text in problems) + ".",
        distance_m=distance,
        promise=None,
    )


def _single(eligible: list[_Eligible], basket: _Basket) -> list[Assignment]:
    if not eligible:
        return []
    best = eligible[0]
    return [_assignment(best, dict(basket.need), basket.services, best.promise)]


def _assignment(
    e: _Eligible, quantities: dict[uuid.UUID, int], services: frozenset[str], promise: Promise
) -> Assignment:
    return Assignment(
        store_id=e.store.store_id,
        code=e.store.code,
        quantities=MappingProxyType(quantities),
        services=services,
        promise=promise,
        distance_m=e.distance,
    )


# --- ship splits -----------------------------------------------------------------------------


def _plan_split(
    eligible: list[_Eligible], basket: _Basket, now: datetime, ftype: FulfillmentType
) -> list[Assignment]:
    """Assign a parcel's lines to locations (see ``choose_stores``); [] when it cannot be done."""
    whole_skus = [
        s for s in basket.need if any(e.store.stock.get(s, 0) >= basket.need[s] for e in eligible)
    ]
    split_skus = [s for s in basket.need if s not in whole_skus]
    services = sorted(basket.services)
    for sku in split_skus:
        if sum(max(0, e.store.stock.get(sku, 0)) for e in eligible) < basket.need[sku]:
            return []
    if any(not any(s in e.store.services for e in eligible) for s in services):
        return []

    # Each whole line is one bit; a location covers the lines it holds in full.
    lines: list[uuid.UUID | str] = [*whole_skus, *services]
    masks = [_mask(e, lines, basket) for e in eligible]
    chosen = _fewest_locations(masks, (1 << len(lines)) - 1, eligible)

    parts: dict[int, tuple[dict[uuid.UUID, int], set[str]]] = {}
    for bit, line in enumerate(lines):
        owner = next(i for i in chosen if masks[i] >> bit & 1)
        quantities, part_services = parts.setdefault(owner, ({}, set()))
        if isinstance(line, str):
            part_services.add(line)
        else:
            quantities[line] = basket.need[line]
    for sku in split_skus:
        remaining = basket.need[sku]
        # Chosen locations first (in rank order), then the others with the most stock first.
        order = [
            *sorted(parts),
            *sorted(
                (i for i in range(len(eligible)) if i not in parts),
                key=lambda i: (-eligible[i].store.stock.get(sku, 0), i),
            ),
        ]
        for i in order:
            take = min(remaining, max(0, eligible[i].store.stock.get(sku, 0)))
            if take:
                parts.setdefault(i, ({}, set()))[0][sku] = take
                remaining -= take
            if not remaining:
                break

    assignments = []
    for i in sorted(parts):
        quantities, part_services = parts[i]
        e = eligible[i]
        promise = promise_for_workload(
            e.store,
            goods_lines=len(quantities),
            services=part_services,
            distance=e.distance,
            now=now,
            fulfillment_type=ftype,
        )
        assignments.append(
            _assignment(e, quantities, frozenset(part_services), promise or e.promise)
        )
    return assignments


def _mask(e: _Eligible, lines: list[uuid.UUID | str], basket: _Basket) -> int:
    mask = 0
    for bit, line in enumerate(lines):
        if isinstance(line, str):
            covered = line in e.store.services
        else:
            covered = e.store.stock.get(line, 0) >= basket.need[line]
        if covered:
            mask |= 1 << bit
    return mask


def _fewest_locations(masks: list[int], full: int, eligible: list[_Eligible]) -> list[int]:
    """Indexes (rank order) of the fewest locations whose masks cover ``full``; among equals,
    the latest promise is earliest, then the sum of ranks is lowest. Exhaustive over
    non-dominated masks within ``SPLIT_SEARCH_BUDGET`` combinations, else greedy."""
    if not full:
        return []
    # A location whose lines are a subset of a better-ranked one's never improves a set.
    kept: list[int] = []
    for i, mask in enumerate(masks):
        if mask and not any(mask | masks[j] == masks[j] for j in kept):
            kept.append(i)
    budget = SPLIT_SEARCH_BUDGET
    for size in range(1, len(kept) + 1):
        best: tuple[tuple[int, int], tuple[int, ...]] | None = None
        for combo in combinations(kept, size):
            budget -= 1
            if budget < 0:
                return _greedy(masks, full, kept)
            union = 0
            for i in combo:
                union |= masks[i]
            if union != full:
                continue
            quality = (max(eligible[i].promise.minutes for i in combo), sum(combo))
            if best is None or quality < best[0]:
                best = (quality, combo)
        if best is not None:
            return list(best[1])
    return _greedy(masks, full, kept)  # unreachable while every line is held somewhere


def _greedy(masks: list[int], full: int, kept: list[int]) -> list[int]:
    chosen: list[int] = []
    left = full
    while left:
        i = max(kept, key=lambda i: (bin(masks[i] & left).count("1"), -i))
        chosen.append(i)
        left &= ~masks[i]
    return sorted(chosen)


# --- explanations ----------------------------------------------------------------------------


def _km(metres: float | None) -> str:
    return "an unknown distance" if metres is None else f"{metres / 1000:.1f} km"


def _eligible_sentence(e: _Eligible, rank: int, of: int, ftype: FulfillmentType) -> str:
    p = e.promise
    verb = "delivered" if ftype is FulfillmentType.DELIVERY else "ready"
    when = f"{verb} in {p.minutes} min"
    if p.slot:
        when += f" (works from its next opening at {p.starts_at:%Y-%m-%d %H:%M} UTC)"
    where = "" if e.distance is None else f", {_km(e.distance)} away"
    extra = f"; {e.note}" if e.note else ""
    return (
        f"{e.store.code}: ranked {rank} of {of}: {when}{where}, "
        f"{e.store.open_tasks} open picking tasks{extra}."
    )


def _summary(
    assignments: list[Assignment],
    promise: Promise | None,
    target: int | None,
    within: bool,
    rejected: list[Verdict],
    ftype: FulfillmentType,
) -> str:
    if promise is None:
        counts: dict[str, int] = {}
        for verdict in rejected:
            for reason in verdict.reasons:
                counts[reason.value] = counts.get(reason.value, 0) + 1
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        return f"No location can fulfil this {ftype.value} order ({why or 'no candidates'})."
    who = " + ".join(a.code for a in assignments)
    text = f"{who}: {promise.minutes} min"
    if promise.slot:
        text += f", from the slot opening {promise.starts_at:%Y-%m-%d %H:%M} UTC"
    if target is None:
        return text + "."
    if within:
        return text + f", within the {target}-minute target."
    return text + f": no location meets the {target}-minute target, this is the best promise."
