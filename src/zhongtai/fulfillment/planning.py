"""Sourcing as the checkout asks for it: read the candidate stores (capabilities, pilot rules,
hours, stock, backlog) in five statements, then let the pure rules choose and explain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, String, bindparam, select
from sqlalchemy.orm import Session

from zhongtai.catalog.categories import sku_category_lineages
from zhongtai.core.reference import ReferenceCache
from zhongtai.fulfillment.location_facts import Address, LocationFacts, candidate_locations
from zhongtai.fulfillment.promise import (
    BasketLine,
    GeoPoint,
    Promise,
    StoreCandidate,
)
from zhongtai.fulfillment.sourcing import choose_stores
from zhongtai.fulfillment.sourcing_decisions import SourcingDecision, SourcingRequest
from zhongtai.inventory.allocation import channel_atp_at
from zhongtai.inventory.rules import Line
from zhongtai.orders.kinds import FulfillmentType, LineKind
from zhongtai.stores.models import (
    Capability,
    LocationKind,
    PilotRule,
    PilotScope,
)
from zhongtai.stores.rules import OpeningSchedule, PilotSwitch, pilot_decision
from zhongtai.stores.service_hours import opening_schedules

#: The capability (and pilot feature) each fulfilment type needs. A try-on is held at the
#: pickup counter; a parcel ships from a store with ship_from_store, or from any warehouse/DC.
CAPABILITY_OF: dict[FulfillmentType, Capability] = {
    FulfillmentType.DELIVERY: Capability.DELIVERY,
    FulfillmentType.PICKUP: Capability.PICKUP,
    FulfillmentType.RESERVE_TRY: Capability.PICKUP,
    FulfillmentType.SHIP: Capability.SHIP_FROM_STORE,
}


@dataclass(frozen=True)
class RequestedLine:
    sku_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class PlanRequest:
    fulfillment_type: FulfillmentType
    channel: str
    lines: Sequence[RequestedLine]
    services: tuple[str, ...] = ()
    address: Address | None = None
    store_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Plan:
    """Which location fulfils which lines, the promise, and the explanation for the caller."""

    assignments: list[tuple[uuid.UUID, list[Line]]]
    store_id: uuid.UUID
    ready_at: datetime | None
    deliver_by: datetime | None
    within_target: bool
    summary: str
    explanation: dict[str, Any]
    #: The reference generation sourcing read its cached data at (None: no location was
    #: asked): the rest of the checkout reads its own cached data at the same one.
    reference_generation: int | None = None


def _service_sku(service: str) -> uuid.UUID:
    """Service lines need no stock; sourcing keys them by a stable id of their name."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"zhongtai:service:{service}")


@lru_cache(maxsize=1)
def _pilot_statement() -> Select[*tuple[Any, ...]]:
    return select(
        PilotRule.feature, PilotRule.scope, PilotRule.scope_value, PilotRule.enabled
    ).where(PilotRule.feature == bindparam("feature", type_=String()))


def _lineages(
    session: Session, sku_ids: Sequence[uuid.UUID], generation: int | None
) -> list[list[uuid.UUID]]:
    """The lineage of each category the basket's SKUs are in, once per category."""
    by_category = {
        lineage[0]: lineage
        for lineage in sku_category_lineages(session, sku_ids, generation=generation).values()
    }
    return [by_category[c] for c in sorted(by_category)]


def _enabled_types(
    location: LocationFacts,
    switches: list[PilotSwitch],
    lineages: list[list[uuid.UUID]],
    ftype: FulfillmentType,
) -> frozenset[FulfillmentType]:
    if ftype is FulfillmentType.SHIP and location.kind is not LocationKind.STORE:
        return frozenset({ftype})  # warehouses and DCs exist to ship
    capability = CAPABILITY_OF[ftype]
    if capability not in location.capabilities:
        return frozenset()
    for lineage in lineages or [[]]:
        decision = pilot_decision(
            switches,
            feature=capability.value,
            store_id=location.id,
            region=location.region,
            category_lineage=lineage,
        )
        if not decision.enabled:
            return frozenset()
    return frozenset({ftype})


def store_candidates(session: Session, request: PlanRequest, now: datetime) -> list[StoreCandidate]:
    """Every location that could be asked, as the pure sourcing rules see it."""
    return _store_candidates(session, request, now)[0]


#: Pilot switches by feature, opening schedules by stores and day, at a reference generation.
_KEPT = ReferenceCache(maxsize=10_000)


def _switches(session: Session, feature: str, generation: int | None) -> list[PilotSwitch]:
    def read() -> list[PilotSwitch]:
        return [
            PilotSwitch(feature_, scope, value, enabled)
            for feature_, scope, value, enabled in session.execute(
                _pilot_statement(), {"feature": feature}
            )
        ]

    return _KEPT.get(session, generation, ("pilot", feature), read)


def _schedules(
    session: Session, locations: list[LocationFacts], now: datetime, generation: int | None
) -> dict[uuid.UUID, OpeningSchedule]:
    zones = {x.id: x.timezone for x in locations}
    # The schedules hold the dated exceptions of a window around the local day: per hour is
    # fine-grained enough to move with it and coarse enough to be asked again and again.
    key = ("hours", frozenset(zones.items()), now.replace(minute=0, second=0, microsecond=0))
    return _KEPT.get(session, generation, key, lambda: opening_schedules(session, zones, now))


def _store_candidates(
    session: Session, request: PlanRequest, now: datetime
) -> tuple[list[StoreCandidate], int | None]:
    """The candidates and the reference generation they were read at.

    Two statements whatever the number of stores and lines: the locations (with capabilities,
    profile, backlog and the reference generation) and the channel's stock with its
    allocation rules. The pilot rules, the opening schedules and the basket's category
    lineages are read only when this process has not read them at that generation, and the
    lineages only when a pilot rule of the capability is set on a category.
    """
    locations, generation = candidate_locations(
        session, request.fulfillment_type, request.address, request.store_id
    )
    if not locations:
        return [], generation
    ids = [x.id for x in locations]
    sku_ids = [x.sku_id for x in request.lines]
    capability = CAPABILITY_OF[request.fulfillment_type]
    switches = _switches(session, capability.value, generation)
    # Only a category's pilot rule looks at categories: without one, none is read.
    by_category = any(x.scope is PilotScope.CATEGORY for x in switches)
    lineages = _lineages(session, sku_ids, generation) if by_category else []
    stock = channel_atp_at(session, request.channel, ids, sku_ids)
    schedules = _schedules(session, locations, now, generation)
    candidates = []
    for location in locations:
        # A location without opening hours (a DC, a 24-hour store) is always open.
        schedule = schedules.get(location.id)
        open_now = schedule.is_open_at(now) if schedule else True
        closes_at = _closes_at(schedule, now) if schedule and open_now else None
        services = location.capabilities.get(Capability.IN_STORE_SERVICES)
        delivery = location.capabilities.get(Capability.DELIVERY)
        asked = location.capabilities.get(CAPABILITY_OF[request.fulfillment_type])
        candidates.append(
            StoreCandidate(
                store_id=location.id,
                code=location.code,
                latitude=location.latitude,
                longitude=location.longitude,
                kind=location.kind,
                open_now=open_now,
                next_open_at=(
                    schedule.next_opening(closes_at if closes_at else now) if schedule else None
                ),
                closes_at=closes_at,
                fulfillment_types=_enabled_types(
                    location, switches, lineages, request.fulfillment_type
                ),
                paused_until=asked.paused_until if asked else None,
                delivery_radius_m=delivery.delivery_radius_m if delivery else None,
                services=frozenset(services.services if services else ()),
                stock={sku: stock.get((location.id, sku), 0) for sku in sku_ids},
                open_tasks=location.open_tasks,
                settings=location.settings,
            )
        )
    return candidates, generation


def _closes_at(schedule: OpeningSchedule, now: datetime) -> datetime | None:
    """When the span the store is open in now ends (None: closed now)."""
    today = schedule.local_day(now)
    for offset in (-1, 0):
        day = today + timedelta(days=offset)
        for span in schedule.spans_on(day):
            opens, closes = schedule.interval(day, span)
            if opens <= now < closes:
                return closes
    return None


def _promise_json(promise: Promise | None) -> dict[str, Any] | None:
    if promise is None:
        return None
    return {
        "ready_at": promise.ready_at.isoformat(),
        "deliver_by": promise.deliver_by.isoformat(),
        "minutes": promise.minutes,
        "slot": promise.slot,
        "queue_wait_seconds": promise.queue_wait_seconds,
        "pick_pack_seconds": promise.pick_pack_seconds,
        "service_prep_seconds": promise.service_prep_seconds,
        "travel_seconds": promise.travel_seconds,
    }


def explain(decision: SourcingDecision) -> dict[str, Any]:
    """The decision as the API shows it: the choice, the promise, and every store's verdict."""
    return {
        "fulfillment_type": decision.fulfillment_type.value,
        "summary": decision.summary,
        "within_target": decision.within_target,
        "target_minutes": decision.target_minutes,
        "promise": _promise_json(decision.promise),
        "candidates": [
            {
                "store_id": str(v.store_id),
                "code": v.code,
                "eligible": v.eligible,
                "chosen": v.chosen,
                "rank": v.rank,
                "reasons": [r.value for r in v.reasons],
                "explanation": v.explanation,
                "distance_m": None if v.distance_m is None else round(v.distance_m),
                "promise": _promise_json(v.promise),
            }
            for v in decision.verdicts
        ],
    }


def plan_sourcing(session: Session, request: PlanRequest, *, now: datetime) -> Plan:
    """Choose the fulfilling location(s) for a basket. No assignment when none can."""
    candidates, generation = _store_candidates(session, request, now)
    basket = [BasketLine(x.sku_id, x.quantity) for x in request.lines] + [
        BasketLine(_service_sku(s), 1, LineKind.SERVICE, s) for s in request.services
    ]
    address = (
        GeoPoint(request.address.latitude, request.address.longitude)
        if request.address is not None
        else None
    )
    decision = choose_stores(
        SourcingRequest(
            fulfillment_type=request.fulfillment_type,
            lines=basket,
            address=address,
            preferred_store_id=request.store_id,
        ),
        candidates,
        now,
    )
    assignments = [
        (a.store_id, [Line(sku, qty) for sku, qty in a.quantities.items()])
        for a in decision.assignments
    ]
    promise = decision.promise
    return Plan(
        assignments=assignments,
        store_id=decision.store_id or (request.store_id or uuid.UUID(int=0)),
        ready_at=promise.ready_at if promise else None,
        deliver_by=promise.deliver_by if promise else None,
        within_target=decision.within_target,
        summary=decision.summary,
        explanation=explain(decision),
        reference_generation=generation,
    )
