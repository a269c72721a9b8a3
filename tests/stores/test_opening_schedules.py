"""The opening schedules of many locations, read at once, answer as each location's own would."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.statements import statements_on
from zhongtai.stores import service_hours
from zhongtai.stores.models import Location
from zhongtai.stores.rules import OpeningSchedule, WeeklySpan

NINE_TO_NINE = [WeeklySpan(d, time(9), time(21)) for d in range(7)]
# 2025-06-06 is a Friday; Shanghai is UTC+8, London UTC+1 in June.
FRIDAY_10_AM_SHANGHAI = datetime(2025, 6, 6, 2, 0, tzinfo=UTC)
FRIDAY = date(2025, 6, 6)


def answers(schedule: OpeningSchedule, around: datetime) -> list[tuple[bool, datetime | None]]:
    """Whether it is open and when it next opens, every hour for three days from a day before."""
    moments = [around - timedelta(days=1) + timedelta(hours=h) for h in range(72)]
    return [(schedule.is_open_at(m), schedule.next_opening(m)) for m in moments]


def located(session: Session, factory: Factory, timezone: str = "Asia/Shanghai") -> Location:
    store = factory.location()
    store.timezone = timezone
    session.flush()
    return store


def test_schedules_of_many_locations_come_in_one_statement_and_agree_with_each_ones_own(
    session: Session, connection: Connection, factory: Factory
) -> None:
    daily = located(session, factory)
    service_hours.set_weekly_hours(session, daily.id, NINE_TO_NINE)
    service_hours.add_exception(session, daily.id, on_date=FRIDAY, closed=True)
    service_hours.add_exception(
        session, daily.id, on_date=FRIDAY + timedelta(days=1), opens_at=time(12), closes_at=time(14)
    )
    late = located(session, factory, "Europe/London")
    service_hours.set_weekly_hours(
        session, late.id, [WeeklySpan(4, time(22), time(2)), WeeklySpan(5, time(10), time(16))]
    )
    service_hours.add_exception(session, late.id, on_date=FRIDAY - timedelta(days=1), closed=True)
    service_hours.add_exception(
        session, late.id, on_date=FRIDAY + timedelta(days=60), opens_at=time(8), closes_at=time(9)
    )
    stores = [daily, late]
    zones = {s.id: s.timezone for s in stores}
    session.expire_all()
    with statements_on(connection, session) as sent:
        schedules = service_hours.opening_schedules(session, zones, FRIDAY_10_AM_SHANGHAI)

    assert len(sent) == 1, sent
    assert set(schedules) == {daily.id, late.id}
    for store in stores:
        own = service_hours.schedule_of(session, store, FRIDAY_10_AM_SHANGHAI)
        assert answers(schedules[store.id], FRIDAY_10_AM_SHANGHAI) == answers(
            own, FRIDAY_10_AM_SHANGHAI
        )
    assert not schedules[daily.id].is_open_at(FRIDAY_10_AM_SHANGHAI), "closed all Friday"
    assert schedules[daily.id].next_opening(FRIDAY_10_AM_SHANGHAI) == datetime(
        2025, 6, 7, 4, 0, tzinfo=UTC
    ), "Saturday's special hours start at 12:00 Shanghai time"


def test_a_location_without_weekly_hours_gets_no_schedule(
    session: Session, factory: Factory
) -> None:
    always = located(session, factory)
    service_hours.add_exception(session, always.id, on_date=FRIDAY, closed=True)
    kept = located(session, factory)
    service_hours.set_weekly_hours(session, kept.id, NINE_TO_NINE)
    schedules = service_hours.opening_schedules(
        session, {always.id: always.timezone, kept.id: kept.timezone}, FRIDAY_10_AM_SHANGHAI
    )
    assert list(schedules) == [kept.id]
    assert schedules[kept.id].is_open_at(FRIDAY_10_AM_SHANGHAI)


def test_no_locations_need_no_query(session: Session) -> None:
    assert service_hours.opening_schedules(session, {}, FRIDAY_10_AM_SHANGHAI) == {}
