"""On PostgreSQL, two PUTs of a store's weekly hours or of one capability at once both succeed,
one after the other (a PUT is idempotent: its retry must not fail while the first runs)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import time

import pytest
from sqlalchemy import select, text

from tests.races import MANY_CONNECTIONS, race_database, until_another_backend_waits_for_a_lock
from zhongtai.core.db import Database
from zhongtai.stores import service, service_hours
from zhongtai.stores.models import (
    Capability,
    Location,
    LocationCapability,
    LocationKind,
    OpeningHours,
)
from zhongtai.stores.rules import WeeklySpan

pytestmark = MANY_CONNECTIONS

WEEK = [WeeklySpan(d, time(9), time(21)) for d in range(7)]


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_store_puts", pool_size=4) as database:
        yield database


def _store(db: Database, code: str) -> Location:
    with db.writer() as s, s.begin():
        return service.create_location(
            s,
            code=code,
            name="race",
            kind=LocationKind.STORE,
            region="r",
            city="c",
            address="a",
            latitude=31.0,
            longitude=121.0,
            timezone="Asia/Shanghai",
        )


def test_a_second_put_of_the_same_hours_waits_for_the_first_instead_of_failing(
    db: Database,
) -> None:
    """The retry of a PUT /hours whose first try is still running (or two clients saving the
    same week) used to meet the first one's new rows on the unique (location, weekday,
    opens_at) and answer 500; the second now waits for the first and replaces its rows."""
    store = _store(db, "HRS1")
    with db.writer() as s, s.begin():
        service_hours.set_weekly_hours(s, store.id, [WeeklySpan(0, time(8), time(20))])
    first = db.writer()
    first.begin()
    service_hours.set_weekly_hours(first, store.id, WEEK)
    own_pid = first.execute(text("SELECT pg_backend_pid()")).scalar_one()

    def second() -> int:
        with db.writer() as s, s.begin():
            return len(service_hours.set_weekly_hours(s, store.id, WEEK).hours)

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(second)
        until_another_backend_waits_for_a_lock(db, own_pid)
        first.commit()
        first.close()
        assert waiting.result(timeout=30) == 7
    with db.reader() as s:
        rows = s.scalars(select(OpeningHours).where(OpeningHours.location_id == store.id)).all()
        assert sorted((h.weekday, h.opens_at, h.closes_at) for h in rows) == [
            (d, time(9), time(21)) for d in range(7)
        ]


def test_a_second_put_of_a_new_capability_waits_for_the_first_instead_of_a_409(
    db: Database,
) -> None:
    """Two PUTs giving a store delivery for the first time: the second used to meet the
    first's row on the primary key and answer 409 "set at the same time; retry"; it now waits
    for the first and sets the radius it was sent."""
    store = _store(db, "CAP1")
    first = db.writer()
    first.begin()
    service.set_capability(first, store.id, Capability.DELIVERY, delivery_radius_m=3000)
    own_pid = first.execute(text("SELECT pg_backend_pid()")).scalar_one()

    def second() -> int | None:
        with db.writer() as s, s.begin():
            row = service.set_capability(s, store.id, Capability.DELIVERY, delivery_radius_m=5000)
            return row.delivery_radius_m

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(second)
        until_another_backend_waits_for_a_lock(db, own_pid)
        first.commit()
        first.close()
        assert waiting.result(timeout=30) == 5000
    with db.reader() as s:
        row = s.get(LocationCapability, (store.id, Capability.DELIVERY))
        assert row is not None and row.delivery_radius_m == 5000
