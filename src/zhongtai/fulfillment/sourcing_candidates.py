"""Judging one candidate store for a basket: eligible with its promise, or the reasons it is not.

Every candidate of a call is judged, so the basket is boiled down once (:func:`basket_of`),
the customer's address keeps its trigonometry (:class:`Origin`), and the cheap checks run
before the stock and promise work. A rejected candidate's verdict says why in words a store
manager reads.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from zhongtai.core.clock import as_utc
from zhongtai.core.errors import InvalidInput
from zhongtai.fulfillment.promise import GeoPoint, Promise, StoreCandidate, promise_for_workload
from zhongtai.fulfillment.sourcing_decisions import Reason, SourcingRequest, Verdict
from zhongtai.orders.kinds import FulfillmentType, LineKind
from zhongtai.stores.rules import EARTH_MEAN_RADIUS_M


@dataclass
class Basket:
    """The request boiled down once: demand by SKU (duplicate lines merged) and services."""

    need: dict[uuid.UUID, int]
    services: frozenset[str]
    goods_lines: int
    lines_total: int = field(init=False)

    def __post_init__(self) -> None:
        self.lines_total = len(self.need) + len(self.services)


@dataclass
class Eligible:
    """A candidate that can fulfil (part of, for a parcel) the basket, and its promise."""

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


def basket_of(request: SourcingRequest) -> Basket:
    """The request's basket; 422 naming the field for an empty basket, a delivery without an
    address, a non-positive target or quantity, or a service line without its service."""
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
    return Basket(need, frozenset(services), goods_lines)


def judge_candidate(
    store: StoreCandidate,
    request: SourcingRequest,
    basket: Basket,
    origin: Origin | None,
    now: datetime,
    *,
    ship: bool,
) -> Eligible | Verdict:
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
    elif store.paused_until is not None and as_utc(store.paused_until) > now:
        until = f"{as_utc(store.paused_until):%Y-%m-%d %H:%M} UTC"
        problems.append((Reason.PAUSED, f"{ftype.value} paused by the store until {until}"))
    if ftype is FulfillmentType.DELIVERY:
        radius = store.delivery_radius_m
        if radius is None or distance is None or distance > radius:
            limit = "no delivery radius" if radius is None else f"its {km(radius)} radius"
            problems.append((Reason.OUTSIDE_RADIUS, f"{km(distance)} away, beyond {limit}"))
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
    return Eligible(store, distance, promise, note)


class Origin:
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


def km(metres: float | None) -> str:
    """A distance as verdicts and summaries write it."""
    return "an unknown distance" if metres is None else f"{metres / 1000:.1f} km"


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
