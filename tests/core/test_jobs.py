"""Housekeeping jobs run one transaction per tick and survive a failing run."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from zhongtai.app import housekeeping_jobs
from zhongtai.core import context
from zhongtai.core.db import Database
from zhongtai.core.jobs import PeriodicJob, run_job_once, run_periodically
from zhongtai.core.settings import Settings
from zhongtai.integrations.providers import Providers


def test_a_job_runs_in_a_transaction_as_a_system_actor(test_db: Database) -> None:
    seen: list[str | None] = []

    def job(session: Session) -> int:
        assert session.in_transaction()
        seen.append(context.actor.get())
        return 3

    assert run_job_once(test_db, PeriodicJob("probe", 1, job)) == 3
    assert seen == ["system:probe"]
    assert context.actor.get() is None


def _counter_table(db: Database) -> None:
    with db.writer() as session, session.begin():
        session.execute(text("CREATE TABLE IF NOT EXISTS job_chunks (n integer)"))


def test_a_chunked_job_runs_again_in_a_new_transaction_while_its_chunks_come_full(
    test_db: Database,
) -> None:
    _counter_table(test_db)
    backlog = [2, 2, 1, 2]  # the third chunk comes back short: the run ends there
    transactions: list[object] = []

    def chunk(session: Session) -> int:
        transactions.append(session.get_transaction())
        done = backlog.pop(0)
        session.execute(text("INSERT INTO job_chunks (n) VALUES (:n)"), {"n": done})
        return done

    assert run_job_once(test_db, PeriodicJob("chunked", 1, chunk, chunk=2)) == 5
    assert backlog == [2]
    assert len({id(t) for t in transactions}) == 3


def test_a_failing_chunk_keeps_what_the_chunks_before_it_did(test_db: Database) -> None:
    _counter_table(test_db)
    calls: list[int] = []

    def chunk(session: Session) -> int:
        calls.append(1)
        session.execute(text("INSERT INTO job_chunks (n) VALUES (:n)"), {"n": len(calls)})
        if len(calls) == 3:
            raise RuntimeError("the third chunk fails")
        return 1

    with pytest.raises(RuntimeError):
        run_job_once(test_db, PeriodicJob("chunked", 1, chunk, chunk=1))
    with test_db.writer() as session:
        kept = session.scalars(text("SELECT n FROM job_chunks ORDER BY n")).all()
    assert kept == [1, 2]


def test_a_chunked_run_stops_between_chunks_when_told(test_db: Database) -> None:
    calls: list[int] = []

    def endless(session: Session) -> int:
        calls.append(1)
        return 1

    told = iter([True, True, False])
    run = run_job_once(test_db, PeriodicJob("endless", 1, endless, chunk=1), lambda: next(told))
    assert run == 3
    assert len(calls) == 3


def test_a_failing_run_is_logged_and_the_loop_goes_on_until_stopped(test_db: Database) -> None:
    runs: list[int] = []
    stop = asyncio.Event()

    def flaky(session: Session) -> int:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        return 0

    async def main() -> None:
        loop = asyncio.create_task(
            run_periodically(test_db, PeriodicJob("flaky", 0.01, flaky), stop)
        )
        async with asyncio.timeout(30):
            while len(runs) < 3:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(loop, timeout=30)

    asyncio.run(main())
    assert len(runs) >= 3


def test_serve_runs_its_housekeeping_jobs_in_order_unless_turned_off(
    settings: Settings, providers: Providers
) -> None:
    names = [j.name for j in housekeeping_jobs(settings, providers)]
    assert names == [
        "reservation-sweeper",
        "unpaid-order-sweeper",
        "uncollected-order-sweeper",
        "parcel-receipts",
        "sla-clock",
        "promise-clock",
        "courier-watch",
        "commission-maturing",
        "points-maturing",
        "guide-tasks",
    ]
    off = settings.model_copy(update={"reservation_sweep_seconds": 0})
    assert housekeeping_jobs(off, providers) == []
    unwatched = settings.model_copy(update={"courier_quiet_minutes": 0})
    assert "courier-watch" not in [j.name for j in housekeeping_jobs(unwatched, providers)]
