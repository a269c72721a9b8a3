"""Sends due webhook deliveries: signed, one at a time per subscription, many subscriptions at once.

A slow or failing endpoint holds only its own subscription's queue: every attempt runs as its own
task with a timeout, and a subscription with an attempt in flight is simply skipped by the next
pick. Outcomes are recorded with backoff and jitter, and a delivery dies after the last attempt.
"""

from __future__ import annotations

import asyncio
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
    DueDelivery,
    due_deliveries,
    record_failure,
    record_success,
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
    """Picks due deliveries and sends each as a task of its own."""

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
        self.client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False
        )
        self.clock = clock
        self.in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}

    async def run_once(self) -> int:
        """Start an attempt for each due queue head; returns how many it started."""
        room = self.settings.webhook_concurrency - len(self.in_flight)
        if room <= 0:
            return 0
        due = await asyncio.to_thread(self._due, list(self.in_flight), room)
        for item in due:
            task = asyncio.create_task(self._attempt(item))
            self.in_flight[item.subscription_id] = task
            task.add_done_callback(self._forget(item.subscription_id))
        return len(due)

    def _forget(self, subscription_id: uuid.UUID) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self.in_flight.pop(subscription_id, None)

        return done

    async def drain(self) -> None:
        """Wait for the attempts in flight."""
        while self.in_flight:
            await asyncio.gather(*list(self.in_flight.values()), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self.client.aclose()

    def _due(self, busy: list[uuid.UUID], limit: int) -> list[DueDelivery]:
        with self.reader() as session:
            return due_deliveries(session, busy=busy, limit=limit)

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
        try:
            await asyncio.to_thread(self._record, due, status_code, error)
        except Exception:
            # The outcome is lost, the delivery stays pending and is sent again: at least once.
            log.exception(
                "could not record a webhook attempt", extra={"delivery": str(due.delivery_id)}
            )

    def _record(self, due: DueDelivery, status_code: int | None, error: str | None) -> None:
        with self.sessions() as session, session.begin():
            if error is None:
                record_success(session, due.delivery_id, status_code or 200)
                return
            record_failure(
                session,
                due.delivery_id,
                attempts_before=due.attempts,
                status_code=status_code,
                error=error,
                max_attempts=self.settings.webhook_max_attempts,
                backoff_base=self.settings.webhook_backoff_base_seconds,
                backoff_cap=self.settings.webhook_backoff_cap_seconds,
            )
