"""HTTP endpoints of the stores context: locations, hours, exceptions, capabilities (and pilot)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.core.text import PlainText
from zhongtai.stores import service, service_hours
from zhongtai.stores.api_pauses import router as pauses_router
from zhongtai.stores.api_pilot import router as pilot_router
from zhongtai.stores.models import Capability, Location, LocationKind
from zhongtai.stores.rules import WeeklySpan
from zhongtai.stores.schemas import (
    CapabilityIn,
    CapabilityOut,
    ExceptionIn,
    ExceptionOut,
    HoursIn,
    HoursOut,
    HoursSpan,
    LocationCreate,
    LocationDetail,
    LocationOut,
    LocationUpdate,
    Moment,
    OpenOut,
)

router = api_router()


def _local(moment: datetime | None, timezone: str) -> datetime | None:
    return None if moment is None else moment.astimezone(ZoneInfo(timezone))


def _hours(location: Location) -> list[HoursSpan]:
    return [HoursSpan.model_validate(h) for h in location.hours]


@router.get("/stores", response_model=Page[LocationOut], tags=["stores"])
def list_stores(
    kind: LocationKind | None = None,
    region: PlainText | None = Query(None, max_length=64),
    capability: Capability | None = Query(None, description="Only locations offering it."),
    principal: Principal = Depends(require(Permission.STORES_READ)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[LocationOut]:
    """Stores, warehouses and DCs by code; store staff and POS keys see only their own stores."""
    rows, cursor = service.list_locations(
        session,
        page,
        kind=kind,
        region=region,
        capability=capability,
        store_ids=principal.store_ids,
    )
    return Page(items=[LocationOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/stores/{store_id}", response_model=LocationDetail, tags=["stores"])
def get_store(
    store_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.STORES_READ)),
    session: Session = Depends(db_session),
) -> LocationDetail:
    """One location with its weekly hours (local HH:MM), coming exceptions and `open_now`."""
    principal.ensure_store(store_id)
    view = service_hours.describe_location(session, store_id)
    location = view.location
    return LocationDetail(
        **LocationOut.model_validate(location).model_dump(),
        hours=_hours(location),
        upcoming_exceptions=[ExceptionOut.model_validate(e) for e in view.upcoming_exceptions],
        open_now=view.status.open,
        next_opening=_local(view.status.next_opening, location.timezone),
    )


@router.post(
    "/stores", response_model=LocationOut, status_code=status.HTTP_201_CREATED, tags=["stores"]
)
def create_store(
    body: LocationCreate,
    _: Principal = Depends(require(Permission.STORES_WRITE)),
    session: Session = Depends(db_session),
) -> LocationOut:
    """Open a store, warehouse or DC. The code is unique (409); the time zone is IANA."""
    return LocationOut.model_validate(service.create_location(session, **body.model_dump()))


@router.patch("/stores/{store_id}", response_model=LocationOut, tags=["stores"])
def update_store(
    store_id: uuid.UUID,
    body: LocationUpdate,
    principal: Principal = Depends(require(Permission.STORES_WRITE)),
    session: Session = Depends(db_session),
) -> LocationOut:
    principal.ensure_store(store_id)
    changes = body.model_dump(exclude_unset=True)
    return LocationOut.model_validate(service.update_location(session, store_id, **changes))


@router.put("/stores/{store_id}/hours", response_model=HoursOut, tags=["stores"])
def set_hours(
    store_id: uuid.UUID,
    body: HoursIn,
    principal: Principal = Depends(require(Permission.STORE_HOURS_WRITE)),
    session: Session = Depends(db_session),
) -> HoursOut:
    """Replace the weekly hours (store managers: their own stores only)."""
    principal.ensure_store(store_id)
    spans = [WeeklySpan(s.weekday, s.opens_at, s.closes_at) for s in body.spans]
    location = service_hours.set_weekly_hours(session, store_id, spans)
    return HoursOut(location_id=location.id, timezone=location.timezone, spans=_hours(location))


@router.post(
    "/stores/{store_id}/exceptions",
    response_model=ExceptionOut,
    status_code=status.HTTP_201_CREATED,
    tags=["stores"],
)
def add_exception(
    store_id: uuid.UUID,
    body: ExceptionIn,
    principal: Principal = Depends(require(Permission.STORE_HOURS_WRITE)),
    session: Session = Depends(db_session),
) -> ExceptionOut:
    """Close a day, or give it special hours (holidays, stocktake); one per date."""
    principal.ensure_store(store_id)
    exception = service_hours.add_exception(session, store_id, **body.model_dump())
    return ExceptionOut.model_validate(exception)


@router.delete(
    "/stores/{store_id}/exceptions/{on_date}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["stores"],
)
def remove_exception(
    store_id: uuid.UUID,
    on_date: date,
    principal: Principal = Depends(require(Permission.STORE_HOURS_WRITE)),
    session: Session = Depends(db_session),
) -> None:
    principal.ensure_store(store_id)
    service_hours.remove_exception(session, store_id, on_date)


@router.put(
    "/stores/{store_id}/capabilities/{capability}", response_model=CapabilityOut, tags=["stores"]
)
def set_capability(
    store_id: uuid.UUID,
    capability: Capability,
    body: CapabilityIn,
    principal: Principal = Depends(require(Permission.STORES_WRITE)),
    session: Session = Depends(db_session),
) -> CapabilityOut:
    """Give a location a capability: delivery needs a radius, in-store services a list."""
    principal.ensure_store(store_id)
    row = service.set_capability(session, store_id, capability, **body.model_dump())
    return CapabilityOut.model_validate(row)


@router.delete(
    "/stores/{store_id}/capabilities/{capability}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["stores"],
)
def remove_capability(
    store_id: uuid.UUID,
    capability: Capability,
    principal: Principal = Depends(require(Permission.STORES_WRITE)),
    session: Session = Depends(db_session),
) -> None:
    principal.ensure_store(store_id)
    service.remove_capability(session, store_id, capability)


@router.get("/stores/{store_id}/open", response_model=OpenOut, tags=["stores"])
def is_open(
    store_id: uuid.UUID,
    at: Moment | None = Query(None, description="ISO 8601 with offset; default now."),
    principal: Principal = Depends(require(Permission.STORES_READ)),
    session: Session = Depends(db_session),
) -> OpenOut:
    """Whether the location is open at a moment, and when it next opens."""
    principal.ensure_store(store_id)
    state = service_hours.open_status(session, store_id, at)
    return OpenOut(
        location_id=store_id,
        timezone=state.timezone,
        at=state.at.astimezone(ZoneInfo(state.timezone)),
        open=state.open,
        next_opening=_local(state.next_opening, state.timezone),
    )


router.include_router(pilot_router)
router.include_router(pauses_router)
