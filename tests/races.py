"""Races on PostgreSQL: a migrated database of a test module's own, and clients released at once.

A race proves an invariant that only the database can hold (no oversell, one member per phone,
one redemption per coupon) when many clients, each in its own transaction, arrive together.
Every client is a thread of its own waiting at one barrier, so they start within microseconds
of each other rather than one after another as a pool's queue would start them.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select, text

from tests import migrated
from tests.factories import TEST_SECRET, password_hash
from tests.live_server import LiveServer, live_server
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.inventory.models import StockBalance

Outcome = TypeVar("Outcome")

#: A race module holds up to half of the server's default 100 connections: with ``-n 2
#: --dist loadgroup`` such modules run one after another on one worker, never side by side.
MANY_CONNECTIONS = [pytest.mark.postgres_only, pytest.mark.xdist_group("postgres_many_connections")]


@contextmanager
def race_database(prefix: str, *, pool_size: int) -> Iterator[Database]:
    """A fresh migrated database on the server, reached through ``pool_size`` connections and
    no overflow: a client finding them all taken waits for one, as behind an API process."""
    with migrated.postgres_database(prefix) as url:
        database = Database.connect(url, pool_size=pool_size, max_overflow=0)
        try:
            yield database
        finally:
            database.dispose()


@contextmanager
def race_server(prefix: str) -> Iterator[LiveServer]:
    """The API served by uvicorn on a fresh migrated database, for races over real HTTP."""
    with (
        migrated.postgres_database(prefix) as url,
        live_server(url, secret=TEST_SECRET) as server,
    ):
        yield server


def hq_admin_headers(db: Database, username: str) -> dict[str, str]:
    """A new HQ admin ``username``, signed in for an hour: the headers of her requests."""
    with db.writer() as s, s.begin():
        user = auth.create_staff_user(
            s,
            username=username,
            display_name="admin",
            role=Role.HQ_ADMIN,
            password="correct-horse-battery",
            password_hash=password_hash("correct-horse-battery"),
        )
        issued = auth.open_session(
            s, user, secret=TEST_SECRET, ttl=timedelta(hours=1), client_ip=None
        )
    return {"Authorization": f"Bearer {issued.access_token}"}


def all_at_once(clients: int, work: Callable[[int], Outcome]) -> list[Outcome]:
    """``work(i)`` for every client ``i``, released together; the outcomes in client order.

    An exception in any client fails the race once every client has finished.
    """
    barrier = threading.Barrier(clients)

    def run(i: int) -> Outcome:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(run, range(clients)))


def requests_at_once(
    calls: list[Callable[[httpx.Client], httpx.Response]],
) -> list[httpx.Response]:
    """Every call sent at once, each on an HTTP client of its own (made before the start, so
    that setting one up does not stagger them); the responses in order."""
    with ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(timeout=60)) for _ in calls]
        return all_at_once(len(calls), lambda i: calls[i](clients[i]))


def processes_at_once(processes: int, target: Callable[..., None], *args: Any) -> list[Any]:
    """``target(*args, p, barrier, out)`` in ``processes`` fresh interpreters released together
    by ``barrier``; each puts one report on the queue ``out``, and those reports come back.

    Processes bring what threads cannot: their own interpreter lock and connection pool, as
    several API processes behind a load balancer have.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    started = [ctx.Process(target=target, args=(*args, p, barrier, out)) for p in range(processes)]
    for process in started:
        process.start()
    reports = [out.get(timeout=300) for _ in started]
    for process in started:
        process.join(timeout=60)
    return reports


def stock_of(db: Database, location_id: uuid.UUID, sku_id: uuid.UUID) -> tuple[int, int]:
    """(on hand, reserved) of a location's balance row of a SKU, as committed now."""
    with db.reader() as s:
        row = s.scalars(
            select(StockBalance).where(
                StockBalance.location_id == location_id, StockBalance.sku_id == sku_id
            )
        ).one()
        return row.on_hand, row.reserved


def until_another_backend_waits_for_a_lock(db: Database, own_pid: int) -> None:
    """Return once a backend of this database other than ``own_pid`` waits for a lock (a
    client blocked on a row that ``own_pid`` holds); fail after 10 seconds."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> :own"
    )
    deadline = time.monotonic() + 10
    with db.reader() as probe:  # autocommit: each look is a fresh snapshot of the activity
        while probe.execute(waiting, {"own": own_pid}).scalar_one() == 0:
            if time.monotonic() > deadline:
                raise AssertionError("no other backend ever waited for a lock")
            time.sleep(0.02)
