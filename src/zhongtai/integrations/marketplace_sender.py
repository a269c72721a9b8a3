"""Pushes sellable stock to marketplaces: signed, coalesced per SKU, many stores and marketplaces
at once.

Each pass picks the dirty SKUs whose time has come, groups them per (connection, store) into
one request, reads their channel ATP *then*, and sends every request as a task of its own with
a timeout. A (connection, store) with a request in flight is skipped by later passes, so its
pushes never overtake each other, and a marketplace holds at most ``per_connection`` slots, so
a slow one never holds up the others.

Requests go out with aiohttp through the guarded client of :mod:`outbound`, as webhooks do: a
connection whose URL is, or whose host has come to resolve to, an internal address is not
pushed to (unless ZHONGTAI_MARKETPLACE_ALLOW_PRIVATE_TARGETS), and the refusal is recorded as a
failed push, retried with backoff like any other, so HQ sees why in ``last_error``.

A connection's signing secret is read sealed and opened only to sign a request; one that does
not open (ZHONGTAI_SECRET_KEY changed) sends nothing, unsigned or otherwise: the push fails
with that reason, and goes out once the key it was sealed under is back or the connection's
secret is rotated. During a rotation's overlap a push is signed with the old secret too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aiohttp
from aiohttp.abc import AbstractResolver
from sqlalchemy.orm import Session, sessionmaker

from zhongtai import __version__
from zhongtai.core.clock import utcnow
from zhongtai.integrations.marketplace_queue import (
    StockPush,
    due_stock,
    prepare_pushes,
    record_failed,
    record_pushed,
)
from zhongtai.integrations.marketplace_rules import plan_batches, push_body
from zhongtai.integrations.marketplace_settings import MarketplaceSettings, marketplace_settings
from zhongtai.integrations.outbound import check_url_address, failure_reason, guarded_client
from zhongtai.integrations.rules import SIGNATURE_HEADER, signature_header
from zhongtai.integrations.sealed_secrets import SecretSealer, SecretUnreadable
from zhongtai.integrations.secret_rotation import signing_secrets

log = logging.getLogger(__name__)
PairKey = tuple[uuid.UUID, uuid.UUID]
#: How much of a refusing answer's body is kept as the SKUs' last error.
ERROR_BODY_BYTES = 500
ALLOW_PRIVATE_HINT = "ZHONGTAI_MARKETPLACE_ALLOW_PRIVATE_TARGETS=true allows internal targets"


def push_request(
    push: StockPush, secret: str, sent_at: datetime, now: int, previous: Sequence[str] = ()
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one push, signed with ``secret`` like webhooks (over
    ``f"{t}." + body``; during a rotation's overlap also with each ``previous`` secret)."""
    body = json.dumps(
        push_body(push.destination.name, push.store_code, push.items, sent_at.isoformat()),
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Zhongtai-Marketplace/{__version__}",
        SIGNATURE_HEADER: signature_header(secret, now, body, previous),
        "Zhongtai-Connection": push.destination.name,
    }
    return body, headers


class StockPushSender:
    """Picks due stock pushes and sends each request as a task of its own."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: MarketplaceSettings | None = None,
        *,
        sealer: SecretSealer,
        reader: sessionmaker[Session] | None = None,
        resolver: AbstractResolver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.reader = reader or sessions
        self.settings = settings or marketplace_settings()
        #: Opens the connections' signing secrets (``marketplace.marketplace_secrets``).
        self.sealer = sealer
        #: Resolves host names before the guard checks them (the system's, unless given).
        self.resolver = resolver
        self.clock = clock
        self.in_flight: dict[PairKey, asyncio.Task[None]] = {}
        self._client: aiohttp.ClientSession | None = None

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client, made on first use (it belongs to the loop the sender runs on)."""
        if self._client is None:
            self._client = guarded_client(
                allow_private=self.settings.allow_private_targets,
                timeout_seconds=self.settings.timeout_seconds,
                connections=self.settings.concurrency,
                resolver=self.resolver,
            )
        return self._client

    async def run_once(self) -> int:
        """Start a request for each (connection, store) with due stock; returns how many."""
        room = self.settings.concurrency - len(self.in_flight)
        if room <= 0:
            return 0
        pushes = await asyncio.to_thread(self._prepare, list(self.in_flight), room)
        for push in pushes:
            task = asyncio.create_task(self._send(push))
            self.in_flight[push.batch.key] = task
            task.add_done_callback(self._forget(push.batch.key))
        return len(pushes)

    def _forget(self, key: PairKey) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self.in_flight.pop(key, None)

        return done

    async def drain(self) -> None:
        """Wait for the requests in flight."""
        while self.in_flight:
            await asyncio.gather(*list(self.in_flight.values()), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _prepare(self, busy: list[PairKey], room: int) -> list[StockPush]:
        open_per_connection = Counter(connection for connection, _ in busy)
        full = [c for c, n in open_per_connection.items() if n >= self.settings.per_connection]
        # One reader session: on SQLite one snapshot, in which the quantities are as new as
        # the versions; on PostgreSQL the quantities are read after, so newer still.
        with self.reader() as session:
            due, destinations = due_stock(
                session, busy=busy, full_connections=full, limit=self.settings.poll_limit
            )
            batches = plan_batches(
                due,
                busy=busy,
                in_flight_per_connection=open_per_connection,
                per_connection=self.settings.per_connection,
                max_items=self.settings.max_items,
                room=room,
            )
            return prepare_pushes(session, batches, destinations)

    async def _send(self, push: StockPush) -> None:
        sent_at = utcnow()
        error: str | None
        try:
            error = await self._post(push, sent_at)
        except SecretUnreadable as exc:
            error = f"not sent: {exc}"
        except Exception as exc:
            error = failure_reason(
                exc, timeout_seconds=self.settings.timeout_seconds, allow_hint=ALLOW_PRIVATE_HINT
            )
            if error is None:
                # E.g. a URL the client refuses: count a failure (so it backs off) rather than
                # end the task with the SKUs due again at once.
                log.exception(
                    "stock push failed",
                    extra={"connection": push.destination.name, "store": push.store_code},
                )
                error = f"{type(exc).__name__}: {exc}"
        try:
            await asyncio.to_thread(self._record, push, sent_at, error)
        except Exception:
            # The outcome is lost; the SKUs stay dirty and are pushed again with fresh figures.
            log.exception(
                "could not record a stock push",
                extra={"connection": push.destination.name, "store": push.store_code},
            )

    async def _post(self, push: StockPush, sent_at: datetime) -> str | None:
        """One signed POST; None when it was answered 2xx, else the error to record."""
        url = push.destination.endpoint_url
        check_url_address(url, allow_private=self.settings.allow_private_targets)
        destination = push.destination
        now = int(self.clock())
        secret, *previous = signing_secrets(
            self.sealer,
            destination.connection_id,
            destination.secrets,
            now=datetime.fromtimestamp(now, UTC),
        )
        body, headers = push_request(push, secret, sent_at, now, previous)
        async with self.client().post(
            url, data=body, headers=headers, allow_redirects=False
        ) as response:
            if 200 <= response.status < 300:
                return None
            text = await response.content.read(ERROR_BODY_BYTES)
            return f"HTTP {response.status}: {text.decode(errors='replace')}"

    def _record(self, push: StockPush, sent_at: datetime, error: str | None) -> None:
        with self.sessions() as session, session.begin():
            if error is None:
                record_pushed(session, push, sent_at=sent_at)
                return
            log.warning(
                "stock push failed; retrying with backoff",
                extra={"connection": push.destination.name, "store": push.store_code},
            )
            record_failed(
                session,
                push,
                error=error,
                backoff_base=self.settings.backoff_base_seconds,
                backoff_cap=self.settings.backoff_cap_seconds,
            )
