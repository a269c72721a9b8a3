"""Weekly hours are replaced as a whole, exceptions are dated, and openness reads both."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.factories import Factory
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.stores import service, service_hours
from zhongtai.stores.models import OpeningException, OpeningHours
from zhongtai.stores.rules import WeeklySpan

NINE_TO_NINE = [WeeklySpan(d, time(9), time(21)) for d in range(7)]
# 2025-06-06 is a Friday; Shanghai is UTC+8.
FRIDAY_10_AM = datetime(2025, 6, 6, 2, 0, tzinfo=UTC)


def test_setting_hours_replaces_every_previous_span(session: Session, factory: Factory) -> None:
    store = factory.location()
    service_hours.set_weekly_hours(session, store.id, NINE_TO_NINE)
    service_hours.set_weekly_hours(session, store.id, NINE_TO_NINE)
    late = [WeeklySpan(4, time(22), time(2)), WeeklySpan(4, time(9), time(12))]
    service_hours.set_weekly_hours(session, store.id, late)
    rows = session.scalars(select(OpeningHours).where(OpeningHours.location_id == store.id)).all()
    assert sorted((r.weekday, r.opens_at, r.closes_at) for r in rows) == [
        (4, time(9), time(12)),
        (4, time(22), time(2)),
    ]
    session.expire_all()
    assert [(h.weekday, h.opens_at) for h in store.hours] == [(4, time(9)), (4, time(22))]


def test_overlapping_spans_are_refused_and_the_old_hours_stay(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    service_hours.set_weekly_hours(session, store.id, NINE_TO_NINE)
    friday_night = WeeklySpan(4, time(22), time(2))
    saturday_early = WeeklySpan(5, time(1), time(8))
    with pytest.raises(InvalidInput) as caught:
        service_hours.set_weekly_hours(session, store.id, [friday_night, saturday_early])
    assert caught.value.errors == [
        {
            "field": "spans",
            "message": "Friday 22:00-02:00 overlaps Saturday 01:00-08:00; spans may not overlap",
        }
    ]
    count = session.scalar(
        select(func.count()).select_from(OpeningHours).where(OpeningHours.location_id == store.id)
    )
    assert count == 7


def test_a_weekday_outside_0_to_6_is_refused(session: Session, factory: Factory) -> None:
    store = factory.location()
    with pytest.raises(InvalidInput) as caught:
        service_hours.set_weekly_hours(session, store.id, [WeeklySpan(7, time(9), time(17))])
    assert caught.value.errors == [
        {"field": "spans.0.weekday", "message": "must be 0 (Monday) to 6 (Sunday)"}
    ]


def test_hours_of_an_unknown_location_are_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        service_hours.set_weekly_hours(session, Factory.new_id(), NINE_TO_NINE)


def test_a_closed_day_closes_the_store_and_shows_as_upcoming(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    service_hours.set_weekly_hours(session, store.id, NINE_TO_NINE)
    assert service_hours.open_status(session, store.id, FRIDAY_10_AM).open
    service_hours.add_exception(session, store.id, on_date=date(2025, 6, 6), closed=True)
    status = service_hours.open_status(session, store.id, FRIDAY_10_AM)
    assert not status.open
    assert status.next_opening == datetime(2025, 6, 7, 1, 0, tzinfo=UTC)
    upcoming = service_hours.upcoming_exceptions(session, store, now=FRIDAY_10_AM)
    assert [(e.on_date, e.closed) for e in upcoming] == [(date(2025, 6, 6), True)]
    assert (
        service_hours.upcoming_exceptions(
            session, store, now=datetime(2025, 6, 7, 1, 0, tzinfo=UTC)
        )
        == []
    )


def test_special_hours_open_the_store_when_the_week_would_not(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    service_hours.add_exception(
        session, store.id, on_date=date(2025, 6, 6), opens_at=time(8), closes_at=time(12)
    )
    assert service_hours.open_status(session, store.id, FRIDAY_10_AM).open
    assert not service_hours.open_status(
        session, store.id, datetime(2025, 6, 6, 5, 0, tzinfo=UTC)
    ).open


def test_a_second_exception_on_the_same_date_is_a_conflict(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    service_hours.add_exception(session, store.id, on_date=date(2025, 10, 1), closed=True)
    with pytest.raises(AlreadyExists):
        service_hours.add_exception(
            session, store.id, on_date=date(2025, 10, 1), opens_at=time(10), closes_at=time(16)
        )


def test_an_exception_is_either_closed_or_has_both_times(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    day = date(2025, 10, 1)
    with pytest.raises(InvalidInput) as caught:
        service_hours.add_exception(session, store.id, on_date=day, opens_at=time(10))
    assert caught.value.errors is not None
    assert caught.value.errors[0]["field"] == "closes_at"
    with pytest.raises(InvalidInput):
        service_hours.add_exception(session, store.id, on_date=day, closed=True, opens_at=time(9))


def test_the_database_itself_refuses_an_open_exception_without_hours(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(OpeningException(location_id=store.id, on_date=date(2025, 1, 1), closed=False))


def test_removing_an_exception_reopens_the_day(session: Session, factory: Factory) -> None:
    store = factory.location()
    service_hours.set_weekly_hours(session, store.id, NINE_TO_NINE)
    service_hours.add_exception(session, store.id, on_date=date(2025, 6, 6), closed=True)
    service_hours.remove_exception(session, store.id, date(2025, 6, 6))
    assert service_hours.open_status(session, store.id, FRIDAY_10_AM).open
    with pytest.raises(NotFound):
        service_hours.remove_exception(session, store.id, date(2025, 6, 6))


def test_a_moment_without_offset_is_refused(session: Session, factory: Factory) -> None:
    store = factory.location()
    with pytest.raises(InvalidInput) as caught:
        service_hours.open_status(session, store.id, datetime(2025, 6, 6, 10, 0))
    assert caught.value.errors is not None
    assert caught.value.errors[0]["field"] == "at"


def test_the_description_of_a_location_carries_its_open_state(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    service_hours.set_weekly_hours(session, store.id, NINE_TO_NINE)
    view = service_hours.describe_location(session, store.id, now=FRIDAY_10_AM)
    assert view.location is service.get_location(session, store.id)
    assert view.status.open
    assert view.status.timezone == "Asia/Shanghai"
