"""Use cases of opening hours: weekly spans, dated exceptions, and whether a location is open."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    CompoundSelect,
    Date,
    Integer,
    Uuid,
    bindparam,
    literal,
    null,
    select,
)
from sqlalchemy.orm import Session

from zhongtai.core.clock import as_utc, business_day, utcnow
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.core.unique import added, write_unique
from zhongtai.stores.models import Location, OpeningException, OpeningHours
from zhongtai.stores.rules import (
    DEFAULT_HORIZON_DAYS,
    DayException,
    OpeningSchedule,
    Span,
    WeeklySpan,
    overlapping_spans,
)
from zhongtai.stores.service import get_location

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _describe(span: WeeklySpan) -> str:
    return f"{WEEKDAYS[span.weekday]} {span.opens_at:%H:%M}-{span.closes_at:%H:%M}"


def set_weekly_hours(
    session: Session, location_id: uuid.UUID, spans: Sequence[WeeklySpan]
) -> Location:
    """Replace all weekly spans of a location. Spans may not overlap anywhere in the week.

    The location's row is locked first: a second replacement at once (a retry, two managers)
    waits for the first and then replaces its spans, instead of inserting beside them.
    """
    location = get_location(session, location_id, lock=True)
    for index, span in enumerate(spans):
        if not 0 <= span.weekday <= 6:
            raise InvalidInput.field(f"spans.{index}.weekday", "must be 0 (Monday) to 6 (Sunday)")
    clash = overlapping_spans(spans)
    if clash is not None:
        first, second = clash
        raise InvalidInput.field(
            "spans", f"{_describe(first)} overlaps {_describe(second)}; spans may not overlap"
        )
    # Delete first, then insert: the same span may come back, and (weekday, opens_at) is unique.
    location.hours.clear()
    session.flush()
    location.hours.extend(
        OpeningHours(weekday=s.weekday, opens_at=s.opens_at, closes_at=s.closes_at)
        for s in sorted(spans, key=lambda s: (s.weekday, s.opens_at))
    )
    session.flush()
    return location


def add_exception(
    session: Session,
    location_id: uuid.UUID,
    *,
    on_date: date,
    closed: bool = False,
    opens_at: time | None = None,
    closes_at: time | None = None,
    note: str | None = None,
) -> OpeningException:
    """A dated exception: closed all day, or special hours that replace that day's spans.

    One exception per date (409 for a second one).
    """
    get_location(session, location_id)
    if closed and (opens_at is not None or closes_at is not None):
        raise InvalidInput.field("opens_at", "leave opens_at and closes_at empty on a closed day")
    if not closed:
        for field, value in (("opens_at", opens_at), ("closes_at", closes_at)):
            if value is None:
                raise InvalidInput.field(field, "is required unless the day is closed")
    exception = OpeningException(
        location_id=location_id,
        on_date=on_date,
        closed=closed,
        opens_at=opens_at,
        closes_at=closes_at,
        note=note,
    )

    def taken() -> AlreadyExists | None:
        clash = session.scalar(
            select(OpeningException.id).where(
                OpeningException.location_id == location_id, OpeningException.on_date == on_date
            )
        )
        if clash is None:
            return None
        return AlreadyExists(
            f"Location {location_id} already has an exception on {on_date}; remove it first.",
            on_date=on_date.isoformat(),
        )

    return write_unique(session, lambda: added(session, exception), taken)


def remove_exception(session: Session, location_id: uuid.UUID, on_date: date) -> None:
    """Remove the exception of a date (404 when there is none)."""
    exception = session.scalar(
        select(OpeningException).where(
            OpeningException.location_id == location_id, OpeningException.on_date == on_date
        )
    )
    if exception is None:
        get_location(session, location_id)
        raise NotFound(f"Location {location_id} has no exception on {on_date}.")
    session.delete(exception)
    session.flush()


def upcoming_exceptions(
    session: Session, location: Location, *, now: datetime | None = None, limit: int = 30
) -> list[OpeningException]:
    """Exceptions from the location's local today on, soonest first."""
    today = business_day(now or utcnow(), location.timezone)
    return list(
        session.scalars(
            select(OpeningException)
            .where(OpeningException.location_id == location.id, OpeningException.on_date >= today)
            .order_by(OpeningException.on_date)
            .limit(limit)
        )
    )


def _day_exception(row: OpeningException) -> DayException:
    if row.closed or row.opens_at is None or row.closes_at is None:
        return DayException(row.on_date, None)
    return DayException(row.on_date, Span(row.opens_at, row.closes_at))


def schedule_of(
    session: Session,
    location: Location,
    around: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> OpeningSchedule:
    """The location's opening schedule with the exceptions that matter from ``around`` on."""
    first, last = _exception_window(business_day(around, location.timezone), horizon_days)
    rows = session.scalars(
        select(OpeningException).where(
            OpeningException.location_id == location.id,
            OpeningException.on_date.between(first, last),
        )
    )
    weekly = [WeeklySpan(h.weekday, h.opens_at, h.closes_at) for h in location.hours]
    return OpeningSchedule(weekly, [_day_exception(r) for r in rows], location.timezone)


def _exception_window(today: date, horizon_days: int) -> tuple[date, date]:
    """The dated exceptions a schedule needs around a local day: overnight spans reach two days
    back, and the next opening is looked for up to the horizon."""
    return today - timedelta(days=2), today + timedelta(days=horizon_days + 2)


@lru_cache(maxsize=1)
def _schedules_statement() -> CompoundSelect[*tuple[Any, ...]]:
    """Weekly spans and dated exceptions of many locations as one list of rows.

    A weekly row has a weekday and no date; an exception has a date and no weekday. Built once
    with bound parameters: sourcing asks on every checkout quote.
    """
    ids = bindparam("ids", type_=Uuid(), expanding=True)
    weekly = select(
        OpeningHours.location_id,
        OpeningHours.weekday,
        null().cast(Date).label("on_date"),
        literal(False, Boolean).label("closed"),
        OpeningHours.opens_at,
        OpeningHours.closes_at,
    ).where(OpeningHours.location_id.in_(ids))
    dated = select(
        OpeningException.location_id,
        null().cast(Integer),
        OpeningException.on_date,
        OpeningException.closed,
        OpeningException.opens_at,
        OpeningException.closes_at,
    ).where(
        OpeningException.location_id.in_(ids),
        OpeningException.on_date.between(
            bindparam("first_day", type_=Date()), bindparam("last_day", type_=Date())
        ),
    )
    return weekly.union_all(dated)


def opening_schedules(
    session: Session,
    timezones: Mapping[uuid.UUID, str],
    around: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> dict[uuid.UUID, OpeningSchedule]:
    """:func:`schedule_of` for many locations (id -> time zone) in one statement.

    Only locations that keep weekly hours get a schedule: one without any (a DC, a 24-hour
    store) is left out, and its dated exceptions with it, for whoever asks to decide.
    """
    if not timezones:
        return {}
    windows = {
        location_id: _exception_window(business_day(around, zone), horizon_days)
        for location_id, zone in timezones.items()
    }
    weekly: dict[uuid.UUID, list[WeeklySpan]] = {}
    dated: dict[uuid.UUID, list[DayException]] = {}
    rows = session.execute(
        _schedules_statement(),
        {
            "ids": list(timezones),
            "first_day": min(first for first, _ in windows.values()),
            "last_day": max(last for _, last in windows.values()),
        },
    )
    for location_id, weekday, on_date, closed, opens_at, closes_at in rows:
        if on_date is None:
            weekly.setdefault(location_id, []).append(WeeklySpan(weekday, opens_at, closes_at))
            continue
        first, last = windows[location_id]
        if first <= on_date <= last:  # the window is per time zone; the query took the widest
            shut = closed or opens_at is None or closes_at is None
            dated.setdefault(location_id, []).append(
                DayException(on_date, None if shut else Span(opens_at, closes_at))
            )
    return {
        location_id: OpeningSchedule(
            sorted(spans, key=lambda s: (s.weekday, s.opens_at)),
            dated.get(location_id, []),
            timezones[location_id],
        )
        for location_id, spans in weekly.items()
    }


@dataclass(frozen=True)
class OpenStatus:
    location_id: uuid.UUID
    timezone: str
    at: datetime
    open: bool
    next_opening: datetime | None


def open_status(session: Session, location_id: uuid.UUID, at: datetime | None = None) -> OpenStatus:
    """Whether the location is open at a moment (now by default) and when it next opens."""
    if at is not None and at.tzinfo is None:
        raise InvalidInput.field("at", "include a UTC offset, e.g. 2025-06-01T09:00:00+08:00")
    location = get_location(session, location_id)
    moment = as_utc(at) if at is not None else utcnow()
    schedule = schedule_of(session, location, moment)
    return OpenStatus(
        location_id=location.id,
        timezone=location.timezone,
        at=moment,
        open=schedule.is_open_at(moment),
        next_opening=schedule.next_opening(moment),
    )


@dataclass(frozen=True)
class LocationView:
    """A location with what a reader wants beside it: coming exceptions and whether it is open."""

    location: Location
    upcoming_exceptions: list[OpeningException]
    status: OpenStatus


def describe_location(
    session: Session, location_id: uuid.UUID, *, now: datetime | None = None
) -> LocationView:
    location = get_location(session, location_id)
    moment = now or utcnow()
    return LocationView(
        location=location,
        upcoming_exceptions=upcoming_exceptions(session, location, now=moment),
        status=open_status(session, location_id, moment),
    )
