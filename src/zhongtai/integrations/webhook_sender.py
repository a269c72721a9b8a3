"""Sends due webhook deliveries: signed, in order per aggregate, many lanes at once.

Each attempt runs as a task of its own with a timeout. A delivery stays "in flight" until its
outcome is recorded, so neither it nor the next event of its aggregate is handed out meanwhile; a
slow or failing endpoint holds only its own lanes. Outcomes that finish together are recorded in
one transaction, and the sender picks new work as soon as attempts finish (or the relay enqueues
some), not on a fixed poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable

import httpx
from sqlalchemy.orm import Session, sessionmaker

from zhongtai import __version__
from zhongtai.integrations.rules import SIGNATURE_HEADER, signature_header
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhook_queue import (
    AttemptOutcome,
    DueDelivery,
    RetryPolicy,
    due_deliveries,
    record_outcomes,
)

log = logging.getLogger(__name__)


def delivery_request(due: DueDelivery, now: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt (the signature covers ``f"{t}." + body``)."""
    body = json.dumps(due.event.envelope(), separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Zhongtai-Webhooks/{__version__}",
        SIGNATURE_HEADER: signature_header(due.secret, now, body),
        "Zhongtai-Event-Id": str(due.event.id),
        "Zhongtai-Event-Type": due.event.type,
        "Zhongtai-Delivery-Id": str(due.delivery_id),
    }
    return body, headers


class WebhookSender:
    """Keeps up to ``webhook_concurrency`` attempts going, ``webhook_lanes_per_subscription``
    of them per subscription, one per lane."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: EventSettings,
        *,
        reader: sessionmaker[Session] | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.reader = reader or sessions
        self.settings = settings
        self.policy = RetryPolicy(
            max_attempts=settings.webhook_max_attempts,
            backoff_base=settings.webhook_backoff_base_seconds,
            backoff_cap=settings.webhook_backoff_cap_seconds,
        )
        slots = settings.webhook_concurrency
        self.client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=slots, max_keepalive_connections=slots),
        )
        self.clock = clock
        #: delivery id -> subscription id, from the pick until the outcome is recorded.
        self.in_flight: dict[uuid.UUID, uuid.UUID] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished: list[AttemptOutcome] = []
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New deliveries may be due (the relay just enqueued some): pick without waiting."""
        self._wake.set()

    async def wait(self, timeout: float) -> None:
        """Until an attempt finishes, :meth:`wake` is called, or ``timeout`` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        self._wake.clear()

    async def run_once(self) -> int:
        """Record the attempts that finished, then start one for each due lane head that fits;
        returns how many it started."""
        await self.record_finished()
        room = self.settings.webhook_concurrency - len(self.in_flight)
        if room <= 0:
            return 0
        due = await asyncio.to_thread(self._due, dict(self.in_flight), room)
        for item in due:
            self.in_flight[item.delivery_id] = item.subscription_id
            task = asyncio.create_task(self._attempt(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def run(self, stop: asyncio.Event, *, leading: Callable[[], bool]) -> None:
        """Send until ``stop`` is set, while ``leading()`` says this process is the relay."""
        while not stop.is_set():
            try:
                if leading():
                    await self.run_once()
                else:
                    # Lead lost: record what finished, start nothing (the new leader sends).
                    await self.record_finished()
            except Exception:
                # The database is away: what is in flight stays in flight, nothing is lost.
                log.exception("webhook sender pass failed")
            await self.wait(self.settings.relay_poll_seconds)

    async def record_finished(self) -> None:
        """Write the outcomes of finished attempts in one transaction, freeing their lanes.

        If that fails the outcomes are kept and written next time; their lanes stay held.
        """
        if not self._finished:
            return
        outcomes, self._finished = self._finished, []
        try:
            await asyncio.to_thread(self._record, outcomes)
        except Exception:
            self._finished = outcomes + self._finished
            raise
        for outcome in outcomes:
            self.in_flight.pop(outcome.delivery_id, None)

    async def drain(self) -> None:
        """Wait for the attempts in flight and record how they ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        try:
            await self.record_finished()
        except Exception:
            # Unrecorded deliveries stay pending and are sent again: at least once.
            log.exception("could not record the last webhook attempts")

    async def close(self) -> None:
        await self.drain()
        await self.client.aclose()

    def _due(self, in_flight: dict[uuid.UUID, uuid.UUID], limit: int) -> list[DueDelivery]:
        with self.reader() as session:
            return due_deliveries(
                session,
                in_flight=in_flight,
                per_subscription=self.settings.webhook_lanes_per_subscription,
                limit=limit,
            )

    def _record(self, outcomes: list[AttemptOutcome]) -> None:
        with self.sessions() as session, session.begin():
            record_outcomes(session, outcomes, self.policy)

    async def _attempt(self, due: DueDelivery) -> None:
        body, headers = delivery_request(due, int(self.clock()))
        status_code: int | None = None
        try:
            response = await self.client.post(
                due.url,
                content=body,
                headers=headers,
                timeout=self.settings.webhook_timeout_seconds,
            )
            status_code = response.status_code
            error = None if response.is_success else f"HTTP {status_code}: {response.text[:500]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            # E.g. a URL the client refuses: count it as a failed attempt rather than leave the
            # delivery in flight, holding its lane, forever.
            log.exception("webhook attempt failed", extra={"delivery": str(due.delivery_id)})
            error = f"{type(exc).__name__}: {exc}"
        self._finished.append(AttemptOutcome(due.delivery_id, due.attempts, status_code, error))
        self._wake.set()
