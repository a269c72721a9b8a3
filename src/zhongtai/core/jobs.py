"""Periodic housekeeping jobs run inside `serve`: each run is one transaction of its own."""

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
    """``run`` takes a session (never commits) and returns how many things it handled."""

    name: str
    every_seconds: float
    run: Callable[[Session], int]


def run_job_once(db: Database, job: PeriodicJob) -> int:
    token = context.actor.set(f"system:{job.name}")
    try:
        with db.writer() as session, session.begin():
            return job.run(session)
    finally:
        context.actor.reset(token)


async def run_periodically(db: Database, job: PeriodicJob, stop: asyncio.Event) -> None:
    """Run ``job`` every ``every_seconds`` until ``stop`` is set; a failed run is logged and
    retried at the next tick, so one bad run never ends the loop."""
    while not stop.is_set():
        try:
            handled = await asyncio.to_thread(run_job_once, db, job)
            if handled:
                log.info("job.ran", job=job.name, handled=handled)
        except Exception:
            log.exception("job.failed", job=job.name)
        try:
            await asyncio.wait_for(stop.wait(), timeout=job.every_seconds)
        except TimeoutError:
            continue
