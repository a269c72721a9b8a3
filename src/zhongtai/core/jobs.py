"""Periodic housekeeping jobs run inside `serve`: each run (or each chunk of a run) is one
transaction of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.db import Database
from zhongtai.core.logging import get_logger

log = get_logger("zhongtai.jobs")


@dataclass(frozen=True)
class PeriodicJob:
    """``run`` takes a session (never commits) and returns how many things it handled.

    A job with a ``chunk`` handles at most that many things per call, and a run calls it again,
    each call in a transaction of its own, for as long as calls come back full. For jobs
    whose backlog can be large (expired holds, unpaid orders): each transaction stays short,
    locks few rows for little time, and takes them in the order every checkout does (across
    two chunks in one transaction it could not). What a chunk did stays done if a later one
    fails.
    """

    name: str
    every_seconds: float
    run: Callable[[Session], int]
    chunk: int | None = None


def run_job_once(
    db: Database, job: PeriodicJob, keep_going: Callable[[], bool] = lambda: True
) -> int:
    """Run ``job`` now, chunk after chunk (see :class:`PeriodicJob`) until a chunk comes back
    short or ``keep_going()`` says stop; how many things it handled in all."""
    token = context.actor.set(f"system:{job.name}")
    handled = 0
    try:
        while True:
            with db.writer() as session, session.begin():
                done = job.run(session)
            handled += done
            if job.chunk is None or done < job.chunk or not keep_going():
                return handled
    finally:
        context.actor.reset(token)


async def run_periodically(db: Database, job: PeriodicJob, stop: asyncio.Event) -> None:
    """Run ``job`` every ``every_seconds`` until ``stop`` is set; a failed run is logged and
    retried at the next tick, so one bad run never ends the loop."""
    while not stop.is_set():
        try:
            handled = await asyncio.to_thread(run_job_once, db, job, _not_set(stop))
            if handled:
                log.info("job.ran", job=job.name, handled=handled)
        except Exception:
            log.exception("job.failed", job=job.name)
        try:
            await asyncio.wait_for(stop.wait(), timeout=job.every_seconds)
        except TimeoutError:
            continue


def _not_set(stop: asyncio.Event) -> Callable[[], bool]:
    # Read from the job's thread: a flag read, no loop call (a chunked run stops between chunks).
    return lambda: not stop.is_set()
