"""Use cases of opening hours: weekly spans, dated exceptions, and whether a location is open."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
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
    """Replace all weekly spans of a location. Spans may not overlap anywhere in the week."""
    location = get_location(session, location_id)
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
    today = business_day(around, location.timezone)
    rows = session.scalars(
        select(OpeningException).where(
            OpeningException.location_id == location.id,
            OpeningException.on_date.between(
                today - timedelta(days=2), today + timedelta(days=horizon_days + 2)
            ),
        )
    )
    weekly = [WeeklySpan(h.weekday, h.opens_at, h.closes_at) for h in location.hours]
    return OpeningSchedule(weekly, [_day_exception(r) for r in rows], location.timezone)


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
