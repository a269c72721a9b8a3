"""The reservation desk: concurrent reservations of one process held in batches, one commit each.

Every ``reserve`` alone pays its own round trips and its own commit, and on a hot SKU each
holds the row lock from its UPDATE to its commit, so the row serves one checkout at a time.
The desk queues the baskets of all threads of the process; a worker takes whatever has
queued (at most ``max_batch``) and holds it with :func:`holds.hold_baskets` in one
transaction of its own: one conditional UPDATE per balance row for the whole batch, one
INSERT each for reservations, lines and events, one commit. Nothing waits for a batch to
fill: under light load a batch is one basket; under heavy load it is whatever arrived while
the previous batch was committing.

Each basket keeps what :func:`reservations.reserve` promises: all-or-nothing, idempotent by
reference, judged in arrival order against the locked rows, never more than the ATP (the
database re-checks every UPDATE). A caller gets its answer only after the batch committed.
If the batch transaction itself fails (not a basket: the database, a bug), each of its baskets
is tried again alone, so one bad basket cannot fail its neighbours.

Unlike a service, the desk commits: it is an entry point (for the HTTP route and the
benchmark), not a step of a caller's unit of work.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType

from zhongtai.core.db import Database
from zhongtai.inventory.hold_requests import HoldRequest, Outcome, Reserved, hold_request
from zhongtai.inventory.holds import hold_baskets
from zhongtai.inventory.rules import Line

log = logging.getLogger(__name__)


class _Ticket:
    """A thread's basket waiting for its batch: the caller blocks on a plain lock the worker
    releases (the cheapest wait there is; a ``Future`` costs a condition and its lock per
    basket)."""

    __slots__ = ("_done", "outcome", "request")

    def __init__(self, request: HoldRequest) -> None:
        self.request = request
        self.outcome: Outcome | Exception | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def settle(self, outcome: Outcome | Exception) -> None:
        self.outcome = outcome
        self._done.release()

    def wait(self) -> Outcome | Exception:
        self._done.acquire()
        assert self.outcome is not None  # settled before the lock was released
        return self.outcome


class _AsyncTicket:
    """A coroutine's basket waiting for its batch on an event loop's future. The worker
    settles all the tickets of one loop in one call onto that loop (one wake-up per batch,
    not per basket); see :meth:`ReservationDesk._serve`."""

    __slots__ = ("future", "loop", "request")

    def __init__(self, request: HoldRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.loop = loop
        self.future: asyncio.Future[Outcome | Exception] = loop.create_future()


def _settle_futures(settled: list[tuple[_AsyncTicket, Outcome | Exception]]) -> None:
    for ticket, outcome in settled:
        if not ticket.future.done():  # its caller may have been cancelled meanwhile
            ticket.future.set_result(outcome)


class ReservationDesk:
    """Holds baskets for many threads in batches. ``close()`` (or ``with``) stops the workers."""

    def __init__(self, db: Database, *, max_batch: int = 64, workers: int = 2) -> None:
        if max_batch < 1 or workers < 1:
            raise ValueError("max_batch and workers must be at least 1")
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Ticket | _AsyncTicket | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._work, name=f"reservation-desk-{n}", daemon=True)
            for n in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def reserve(
        self,
        reference: str,
        location_id: uuid.UUID,
        lines: Sequence[Line],
        ttl: timedelta,
        *,
        channel: str | None = None,
        now: datetime | None = None,
    ) -> Reserved:
        """As :func:`reservations.reserve`, committed: blocks until the basket's batch is."""
        # Shape checks here, in the caller's thread: bad input never reaches a batch.
        ticket = _Ticket(hold_request(reference, location_id, lines, ttl, channel=channel, now=now))
        self._queue.put(ticket)
        return _answer(ticket.wait())

    async def reserve_async(
        self,
        reference: str,
        location_id: uuid.UUID,
        lines: Sequence[Line],
        ttl: timedelta,
        *,
        channel: str | None = None,
        now: datetime | None = None,
    ) -> Reserved:
        """As :meth:`reserve`, for a coroutine: waits on the event loop, not on a thread.

        If the caller is cancelled (a client went away), its basket is still held or refused
        with its batch, as a thread's would be after a timeout; the reference makes a retry
        answer the same reservation.
        """
        request = hold_request(reference, location_id, lines, ttl, channel=channel, now=now)
        ticket = _AsyncTicket(request, asyncio.get_running_loop())
        self._queue.put(ticket)
        return _answer(await ticket.future)

    def close(self) -> None:
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join()

    def __enter__(self) -> ReservationDesk:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    ticket = self._queue.get_nowait()
                except queue.Empty:
                    break
                if ticket is None:  # closing: finish this batch, then stop
                    self._queue.put(None)
                    break
                batch.append(ticket)
            self._serve(batch)

    def _serve(self, batch: list[_Ticket | _AsyncTicket]) -> None:
        requests = [ticket.request for ticket in batch]
        outcomes: list[Outcome | Exception]
        try:
            outcomes = list(self._hold(requests))
        except Exception:
            log.exception("a batch of %d reservations failed; holding each alone", len(batch))
            outcomes = [self._hold_alone(request) for request in requests]
        on_loops: dict[asyncio.AbstractEventLoop, list[tuple[_AsyncTicket, Outcome | Exception]]]
        on_loops = {}
        for ticket, outcome in zip(batch, outcomes, strict=True):
            if isinstance(ticket, _AsyncTicket):
                on_loops.setdefault(ticket.loop, []).append((ticket, outcome))
            else:
                ticket.settle(outcome)
        for loop, settled in on_loops.items():
            try:
                loop.call_soon_threadsafe(_settle_futures, settled)
            except RuntimeError:  # the loop was closed: nobody is waiting any more
                log.warning("%d reservations answered to a closed event loop", len(settled))

    def _hold(self, requests: list[HoldRequest]) -> list[Outcome]:
        with self._db.writer() as session, session.begin():
            return hold_baskets(session, requests)

    def _hold_alone(self, request: HoldRequest) -> Outcome | Exception:
        try:
            [outcome] = self._hold([request])
        except Exception as failure:  # handed to the basket's caller, who sees it raised
            return failure
        return outcome


def _answer(outcome: Outcome | Exception) -> Reserved:
    if isinstance(outcome, Exception):  # a DomainError of the basket, or a failure
        raise outcome
    return outcome
