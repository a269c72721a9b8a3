"""Where sourcing starts: the candidate locations of a basket, read in one statement with
everything the rules ask of each (capabilities, fulfilment profile, picking backlog) and the
reference generation the rest of the checkout reads its cached data at."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, Select, Uuid, bindparam, func, select, text
from sqlalchemy.orm import Session

from zhongtai.core.errors import InvalidInput
from zhongtai.core.reference import generation_column
from zhongtai.fulfillment.models import FulfillmentProfile
from zhongtai.fulfillment.promise import PromiseSettings
from zhongtai.orders.kinds import PICKING_BACKLOG_SQL, FulfillmentType
from zhongtai.orders.models import Order
from zhongtai.stores.models import (
    Capability,
    Location,
    LocationCapability,
    LocationKind,
    LocationStatus,
)

#: How far from the customer's address a pickup store is still offered.
PICKUP_WITHIN_M = 10_000
MAX_DELIVERY_RADIUS_M = 20_000
_METRES_PER_DEGREE = 111_195.0


@dataclass(frozen=True)
class Address:
    latitude: float
    longitude: float
    text: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"latitude": self.latitude, "longitude": self.longitude, "text": self.text}


def _box(latitude: float, longitude: float, radius_m: float) -> tuple[float, float]:
    dlat = radius_m / _METRES_PER_DEGREE
    dlng = radius_m / (_METRES_PER_DEGREE * max(0.01, math.cos(math.radians(latitude))))
    return dlat, dlng


@dataclass(frozen=True)
class CapabilityFacts:
    delivery_radius_m: int | None
    services: tuple[str, ...]
    paused_until: datetime | None = None


@dataclass(frozen=True)
class LocationFacts:
    """A location as sourcing reads it: where it is, what it can do, how busy and how fast."""

    id: uuid.UUID
    code: str
    kind: LocationKind
    region: str
    latitude: float
    longitude: float
    timezone: str
    capabilities: dict[Capability, CapabilityFacts]
    open_tasks: int
    settings: PromiseSettings


#: A location's fulfilment profile: what :func:`_profile_settings` reads.
_PACE_COLUMNS: tuple[Any, ...] = (
    FulfillmentProfile.avg_pick_seconds,
    FulfillmentProfile.pick_pack_seconds,
    FulfillmentProfile.per_line_seconds,
    FulfillmentProfile.service_prep_seconds,
    FulfillmentProfile.road_factor,
    FulfillmentProfile.rider_speed_m_per_min,
    FulfillmentProfile.handover_seconds,
)


@lru_cache(maxsize=4)
def _locations_statement(shape: str) -> Select[*tuple[Any, ...]]:
    """Active locations with their capabilities, fulfilment profile and picking backlog.

    One row per capability (a location without any: one row of NULLs), so the checkout reads
    every candidate in one statement. Built once per shape (``store``: the named location;
    ``near``: stores in a box around the address; ``any``: every location) with bound
    parameters, so a quote pays neither statement construction nor compilation.
    """
    backlog = (
        select(func.count())
        .where(Order.store_id == Location.id, text(f"orders.{PICKING_BACKLOG_SQL}"))
        .scalar_subquery()
    )
    stmt = (
        select(
            Location.id,
            Location.code,
            Location.kind,
            Location.region,
            Location.latitude,
            Location.longitude,
            Location.timezone,
            LocationCapability.capability,
            LocationCapability.delivery_radius_m,
            LocationCapability.services,
            LocationCapability.paused_until,
            FulfillmentProfile.location_id.label("profile_of"),
            *_PACE_COLUMNS,
            backlog.label("open_tasks"),
            generation_column().label("reference_generation"),
        )
        .outerjoin(LocationCapability, LocationCapability.location_id == Location.id)
        .outerjoin(FulfillmentProfile, FulfillmentProfile.location_id == Location.id)
        .where(Location.status == LocationStatus.ACTIVE)
        .order_by(Location.code)
    )
    if shape == "store":
        return stmt.where(Location.id == bindparam("store_id", type_=Uuid()))
    if shape == "near":
        return stmt.where(
            Location.kind == LocationKind.STORE,
            Location.latitude.between(bindparam("south"), bindparam("north")),
            Location.longitude.between(bindparam("west"), bindparam("east")),
        )
    return stmt


def _location_query(
    ftype: FulfillmentType, address: Address | None, store_id: uuid.UUID | None
) -> tuple[Select[*tuple[Any, ...]], dict[str, Any]]:
    if store_id is not None:
        return _locations_statement("store"), {"store_id": store_id}
    if ftype is FulfillmentType.SHIP:
        return _locations_statement("any"), {}
    if address is None:
        raise InvalidInput.field("address", "needed to find stores near the customer")
    reach = MAX_DELIVERY_RADIUS_M if ftype is FulfillmentType.DELIVERY else PICKUP_WITHIN_M
    latitude, longitude = address.latitude, address.longitude
    dlat, dlng = _box(latitude, longitude, reach)
    return _locations_statement("near"), {
        "south": latitude - dlat,
        "north": latitude + dlat,
        "west": longitude - dlng,
        "east": longitude + dlng,
    }


def candidate_locations(
    session: Session,
    ftype: FulfillmentType,
    address: Address | None,
    store_id: uuid.UUID | None,
) -> tuple[list[LocationFacts], int | None]:
    """The locations that could be asked, by code, each with everything sourcing reads of it,
    and the reference generation (None when there is no location): the named store, every
    location for a parcel, or the stores in a box around the address."""
    stmt, params = _location_query(ftype, address, store_id)
    rows_of: dict[uuid.UUID, list[Row[Any]]] = {}
    generation = None
    for row in session.execute(stmt, params):
        rows_of.setdefault(row.id, []).append(row)
        generation = row.reference_generation
    return [_location_facts(rows) for rows in rows_of.values()], generation


def _location_facts(rows: list[Row[Any]]) -> LocationFacts:
    first = rows[0]
    return LocationFacts(
        id=first.id,
        code=first.code,
        kind=first.kind,
        region=first.region,
        latitude=first.latitude,
        longitude=first.longitude,
        timezone=first.timezone,
        capabilities={
            r.capability: CapabilityFacts(
                r.delivery_radius_m, tuple(r.services or ()), r.paused_until
            )
            for r in rows
            if r.capability is not None
        },
        open_tasks=first.open_tasks,
        settings=_profile_settings(first if first.profile_of is not None else None),
    )


def _profile_settings(profile: Row[Any] | None) -> PromiseSettings:
    if profile is None:
        return PromiseSettings()
    defaults = PromiseSettings()
    return PromiseSettings(
        pick_seconds_per_queued_task=profile.avg_pick_seconds,
        pick_pack_seconds_per_order=profile.pick_pack_seconds,
        pick_pack_seconds_per_line=profile.per_line_seconds,
        service_prep_seconds={**defaults.service_prep_seconds, **profile.service_prep_seconds},
        road_factor=profile.road_factor,
        rider_speed_m_per_min=float(profile.rider_speed_m_per_min),
        handover_seconds=profile.handover_seconds,
    )


def location_pace(session: Session, location_id: uuid.UUID) -> PromiseSettings:
    """How fast a location works, as the delivery promise reads it: its fulfilment profile over
    the defaults, whatever its capabilities and status (the store's work on orders already
    placed goes on at its pace)."""
    profile = session.execute(
        select(*_PACE_COLUMNS).where(FulfillmentProfile.location_id == location_id)
    ).first()
    return _profile_settings(profile)
