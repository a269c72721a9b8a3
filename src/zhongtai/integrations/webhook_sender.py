"""Sends due webhook deliveries: signed, in order per aggregate, many lanes at once.

Each attempt runs as a task of its own with a timeout. The sender first claims the lane heads it
is about to send (:mod:`webhook_attempts`): a claimed delivery stays "in flight" until its
outcome is recorded, so neither it nor any other delivery of its lane is handed out meanwhile, by
this sender or by another (a relay that takes the lease over while this one's attempts are still
out); a slow or failing endpoint holds only its own lanes. Outcomes that finish together are
recorded in one transaction, and the sender picks new work as soon as attempts finish (or the
relay enqueues some), not on a fixed poll.

Requests go out with aiohttp: at hundreds of deliveries a second its cost per request is a
fraction of httpx's, which left the sender short of CPU on a small machine (see BENCHMARKS.md,
events). Every connection resolves its host through the guard of :mod:`outbound`, so a URL
whose name has come to point at an internal address is refused when sent, not only when
subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aiohttp
from aiohttp.abc import AbstractResolver
from sqlalchemy.orm import Session, sessionmaker

from zhongtai import __version__
from zhongtai.integrations.handlers import PublishedEvent
from zhongtai.integrations.outbound import check_url_address, failure_reason, guarded_client
from zhongtai.integrations.rules import SIGNATURE_HEADER, signature_header
from zhongtai.integrations.sealed_secrets import SecretSealer, SecretUnreadable
from zhongtai.integrations.secret_rotation import signing_secrets
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhook_attempts import (
    CLAIM_GRACE_SECONDS,
    AttemptOutcome,
    RetryPolicy,
    claim_deliveries,
    record_outcomes,
)
from zhongtai.integrations.webhook_queue import DueDelivery, due_deliveries

log = logging.getLogger(__name__)
#: How much of a refusing answer's body is kept as the delivery's last error.
ERROR_BODY_BYTES = 500
ALLOW_PRIVATE_HINT = "ZHONGTAI_WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows internal targets"


def delivery_request(
    event: PublishedEvent,
    delivery_id: uuid.UUID,
    secret: str,
    now: int,
    previous: Sequence[str] = (),
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt (the signature covers ``f"{t}." + body``; during a
    rotation's overlap one more under each ``previous`` secret)."""
    body = json.dumps(event.envelope(), separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Zhongtai-Webhooks/{__version__}",
        SIGNATURE_HEADER: signature_header(secret, now, body, previous),
        "Zhongtai-Event-Id": str(event.id),
        "Zhongtai-Event-Type": event.type,
        "Zhongtai-Delivery-Id": str(delivery_id),
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
        sealer: SecretSealer,
        reader: sessionmaker[Session] | None = None,
        resolver: AbstractResolver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.reader = reader or sessions
        self.settings = settings
        self.sealer = sealer
        self.policy = RetryPolicy(
            max_attempts=settings.webhook_max_attempts,
            backoff_base=settings.webhook_backoff_base_seconds,
            backoff_cap=settings.webhook_backoff_cap_seconds,
        )
        #: Resolves host names before the guard checks them (the system's, unless given).
        self.resolver = resolver
        self.clock = clock
        #: How long a claim holds a delivery: the attempt's timeout and a grace to record it.
        self.claim_seconds = settings.webhook_timeout_seconds + CLAIM_GRACE_SECONDS
        #: delivery id -> subscription id, from the claim until the outcome is recorded.
        self.in_flight: dict[uuid.UUID, uuid.UUID] = {}
        #: delivery id -> its lane, for the same deliveries.
        self._lanes: dict[uuid.UUID, tuple[uuid.UUID, str, str]] = {}
        self._client: aiohttp.ClientSession | None = None
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
        """Record the attempts that finished, then claim the due lane heads that fit and start
        an attempt of each; returns how many it started."""
        await self.record_finished()
        room = self.settings.webhook_concurrency - len(self.in_flight)
        if room <= 0:
            return 0
        due = await asyncio.to_thread(
            self._claim, dict(self.in_flight), set(self._lanes.values()), room
        )
        for item in due:
            self.in_flight[item.delivery_id] = item.subscription_id
            self._lanes[item.delivery_id] = item.lane
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
            self._lanes.pop(outcome.delivery_id, None)

    async def drain(self) -> None:
        """Wait for the attempts in flight and record how they ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        try:
            await self.record_finished()
        except Exception:
            # Unrecorded deliveries stay claimed until their claims lapse, then are sent again
            # (at least once); their attempts were counted when claimed.
            log.exception("could not record the last webhook attempts")

    async def close(self) -> None:
        await self.drain()
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _claim(
        self,
        in_flight: dict[uuid.UUID, uuid.UUID],
        busy_lanes: set[tuple[uuid.UUID, str, str]],
        limit: int,
    ) -> list[DueDelivery]:
        """Find due lane heads (a read, which is all an idle pass does), then claim them."""
        with self.reader() as session:
            candidates = due_deliveries(
                session,
                in_flight=in_flight,
                per_subscription=self.settings.webhook_lanes_per_subscription,
                limit=limit,
            )
        # This sender's own attempts hold their lanes even should their claims lapse meanwhile.
        candidates = [c for c in candidates if c.lane not in busy_lanes]
        if not candidates:
            return []
        with self.sessions() as session, session.begin():
            return claim_deliveries(
                session,
                candidates,
                max_attempts=self.policy.max_attempts,
                claim_seconds=self.claim_seconds,
            )

    def _record(self, outcomes: list[AttemptOutcome]) -> None:
        with self.sessions() as session, session.begin():
            record_outcomes(session, outcomes, self.policy)

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client, made on first use (it belongs to the loop the sender runs on)."""
        if self._client is None:
            self._client = guarded_client(
                allow_private=self.settings.webhook_allow_private_targets,
                timeout_seconds=self.settings.webhook_timeout_seconds,
                connections=self.settings.webhook_concurrency,
                resolver=self.resolver,
            )
        return self._client

    async def _attempt(self, due: DueDelivery) -> None:
        if due.claim_id is None:
            raise ValueError(f"delivery {due.delivery_id} is sent unclaimed")
        status_code: int | None = None
        try:
            status_code, error = await self._post(due)
        except SecretUnreadable as exc:
            error = f"not sent: {exc}"
        except Exception as exc:
            error = failure_reason(
                exc,
                timeout_seconds=self.settings.webhook_timeout_seconds,
                allow_hint=ALLOW_PRIVATE_HINT,
            )
            if error is None:
                # E.g. a URL the client refuses: count it as a failed attempt rather than leave
                # the delivery in flight, holding its lane, forever.
                log.exception("webhook attempt failed", extra={"delivery": str(due.delivery_id)})
                error = f"{type(exc).__name__}: {exc}"
        self._finished.append(
            AttemptOutcome(due.delivery_id, due.claim_id, due.attempts + 1, status_code, error)
        )
        self._wake.set()

    async def _post(self, due: DueDelivery) -> tuple[int, str | None]:
        """One signed POST; the answer's status and, unless it is 2xx, the error to record."""
        check_url_address(due.url, allow_private=self.settings.webhook_allow_private_targets)
        now = int(self.clock())
        secret, *previous = signing_secrets(
            self.sealer, due.subscription_id, due.secrets, now=datetime.fromtimestamp(now, UTC)
        )
        body, headers = delivery_request(due.event, due.delivery_id, secret, now, previous)
        async with self.client().post(
            due.url, data=body, headers=headers, allow_redirects=False
        ) as response:
            if 200 <= response.status < 300:
                return response.status, None
            text = await response.content.read(ERROR_BODY_BYTES)
            return response.status, f"HTTP {response.status}: {text.decode(errors='replace')}"
