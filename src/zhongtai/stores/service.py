"""Use cases of locations: create and change stores, warehouses and DCs, list and find them."""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.core.unique import added, write_unique
from zhongtai.stores.models import (
    Capability,
    Location,
    LocationCapability,
    LocationKind,
    LocationStatus,
)
from zhongtai.stores.rules import is_valid_timezone

_UPDATABLE = frozenset(
    {
        "code",
        "name",
        "kind",
        "status",
        "region",
        "city",
        "address",
        "latitude",
        "longitude",
        "timezone",
        "phone",
    }
)
_REQUIRED = frozenset(_UPDATABLE - {"phone"})  # all but the phone may be changed, not nulled


def check_coordinates(latitude: float, longitude: float) -> None:
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        raise InvalidInput.field("latitude", "must be a number between -90 and 90")
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        raise InvalidInput.field("longitude", "must be a number between -180 and 180")


def check_timezone(timezone: str) -> None:
    if not is_valid_timezone(timezone):
        raise InvalidInput.field(
            "timezone", f"{timezone!r} is not an IANA time zone such as 'Asia/Shanghai'"
        )


def _code_taken(
    session: Session, code: str, *, but: uuid.UUID | None = None
) -> AlreadyExists | None:
    """The 409 for a location code already in use (by another location than ``but``)."""
    holder = session.scalar(select(Location.id).where(Location.code == code))
    if holder is None or holder == but:
        return None
    return AlreadyExists(f"A location with code {code!r} already exists.", code=code)


def create_location(
    session: Session,
    *,
    code: str,
    name: str,
    kind: LocationKind,
    region: str,
    city: str,
    address: str,
    latitude: float,
    longitude: float,
    timezone: str,
    phone: str | None = None,
) -> Location:
    """A new active location; its code must be unique (409 otherwise)."""
    check_coordinates(latitude, longitude)
    check_timezone(timezone)
    location = Location(
        code=code,
        name=name,
        kind=kind,
        status=LocationStatus.ACTIVE,
        region=region,
        city=city,
        address=address,
        latitude=latitude,
        longitude=longitude,
        timezone=timezone,
        phone=phone,
    )
    return write_unique(
        session, lambda: added(session, location), lambda: _code_taken(session, code)
    )


def get_location(session: Session, location_id: uuid.UUID, *, lock: bool = False) -> Location:
    """The location (404 if none). ``lock``: hold its row until the transaction ends, so that
    writers replacing what hangs off it (its weekly hours) take turns (PostgreSQL; SQLite
    writers take turns anyway)."""
    if lock:
        location = session.get(Location, location_id, with_for_update=True, populate_existing=True)
    else:
        location = session.get(Location, location_id)
    if location is None:
        raise NotFound(f"No location {location_id}.", location_id=str(location_id))
    return location


def update_location(session: Session, location_id: uuid.UUID, **changes: Any) -> Location:
    """Change some fields of a location; a new code must stay unique (409 otherwise)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise InvalidInput.field(sorted(unknown)[0], "cannot be changed")
    for field in sorted(_REQUIRED & set(changes)):
        if changes[field] is None:
            raise InvalidInput.field(field, "may not be null")
    location = get_location(session, location_id)
    check_coordinates(
        changes.get("latitude", location.latitude), changes.get("longitude", location.longitude)
    )
    if "timezone" in changes:
        check_timezone(changes["timezone"])

    def write() -> Location:
        for field, value in changes.items():
            setattr(location, field, value)
        return location

    code = changes.get("code", location.code)
    return write_unique(session, write, lambda: _code_taken(session, code, but=location_id))


def list_locations(
    session: Session,
    page: PageParams,
    *,
    kind: LocationKind | None = None,
    region: str | None = None,
    capability: Capability | None = None,
    status: LocationStatus | None = None,
    store_ids: Collection[uuid.UUID] | None = None,
) -> tuple[list[Location], str | None]:
    """One page of locations by code; ``store_ids`` limits them to a caller's stores."""
    stmt = select(Location)
    if kind is not None:
        stmt = stmt.where(Location.kind == kind)
    if region is not None:
        stmt = stmt.where(Location.region == region)
    if status is not None:
        stmt = stmt.where(Location.status == status)
    if capability is not None:
        stmt = stmt.where(
            Location.id.in_(
                select(LocationCapability.location_id).where(
                    LocationCapability.capability == capability
                )
            )
        )
    if store_ids is not None:
        stmt = stmt.where(Location.id.in_(store_ids))
    return paginate(session, stmt, [Location.code, Location.id], page)


def _clean_services(services: list[str] | None) -> list[str]:
    cleaned = list(dict.fromkeys(s.strip() for s in services or []))
    if not cleaned or any(not s or len(s) > 64 for s in cleaned):
        raise InvalidInput.field(
            "services", "list at least one service, each 1 to 64 characters (e.g. fish_cleaning)"
        )
    return cleaned


def set_capability(
    session: Session,
    location_id: uuid.UUID,
    capability: Capability,
    *,
    delivery_radius_m: int | None = None,
    services: list[str] | None = None,
) -> LocationCapability:
    """Give a location a capability, or change its radius or services.

    Delivery needs a radius in metres; in-store services need the list of services offered.
    The location's row is locked first, so that a second PUT at once (a retry) waits for the
    first and then changes its row, rather than failing on it.
    """
    get_location(session, location_id, lock=True)
    if capability is Capability.DELIVERY:
        if delivery_radius_m is None or delivery_radius_m <= 0:
            raise InvalidInput.field("delivery_radius_m", "delivery needs a radius in metres > 0")
    elif delivery_radius_m is not None:
        raise InvalidInput.field("delivery_radius_m", "only delivery has a radius")
    if capability is Capability.IN_STORE_SERVICES:
        offered = _clean_services(services)
    elif services:
        raise InvalidInput.field("services", "only in_store_services lists services")
    else:
        offered = []
    row = session.get(LocationCapability, (location_id, capability))
    if row is None:
        row = LocationCapability(
            location_id=location_id,
            capability=capability,
            delivery_radius_m=delivery_radius_m,
            services=offered,
        )
        write_unique(
            session,
            lambda: added(session, row),
            lambda: (
                Conflict(
                    f"{capability.value} of location {location_id} was set at the same time; retry."
                )
                if session.get(LocationCapability, (location_id, capability))
                else None
            ),
        )
    else:
        row.delivery_radius_m = delivery_radius_m
        row.services = offered
        session.flush()
    session.expire(get_location(session, location_id), ["capabilities"])
    return row


def remove_capability(session: Session, location_id: uuid.UUID, capability: Capability) -> None:
    """Take a capability away from a location (404 when it does not have it)."""
    row = session.get(LocationCapability, (location_id, capability))
    if row is None:
        get_location(session, location_id)
        raise NotFound(f"Location {location_id} does not offer {capability.value}.")
    session.delete(row)
    session.flush()
    session.expire(get_location(session, location_id), ["capabilities"])
