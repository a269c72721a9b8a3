"""The relay: delivers every committed outbox event at least once, in order per aggregate.

Each pass takes the oldest *unpublished* events (``published_at IS NULL``, in seq order) — not
the events above a high-water mark, because a transaction that drew seq 5 may commit after the
one that drew seq 6 — runs the in-process handlers, hands the events to the broker, then in one
transaction marks them published and enqueues their webhook deliveries. A crash anywhere before
that commit means the events are found again and redelivered: handlers skip what they already
handled (``handled_events``), JetStream drops repeated message ids. An event whose handler fails
holds back the later events of its aggregate until it succeeds.

One relay delivers at a time: a lease row, renewed every pass, is taken over by another process
only after it expires (a killed relay's successor waits at most ``lease_seconds``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from zhongtai.core.clock import utcnow
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.broker import NoBroker, Publisher
from zhongtai.integrations.handlers import HANDLERS, PublishedEvent, handle
from zhongtai.integrations.models import RelayLease
from zhongtai.integrations.webhook_queue import enqueue_deliveries

log = logging.getLogger(__name__)
LEASE_NAME = "outbox"


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Relay:
    """Moves outbox events to handlers, the broker and the webhook queues."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        reader: sessionmaker[Session] | None = None,
        publisher: Publisher | None = None,
        holder: str | None = None,
        batch_size: int = 500,
        lease_seconds: float = 15.0,
    ) -> None:
        self.sessions = sessions
        # Finding work only reads: on SQLite a reader does not take the write lock each poll.
        self.reader = reader or sessions
        self.publisher: Publisher = publisher or NoBroker()
        self.holder = holder or default_holder()
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        #: Whether the last pass held the lease (the webhook sender runs only then).
        self.leading = False
        self._lease_until: datetime | None = None

    async def run_once(self) -> int:
        """One pass; returns how many events it published (0: idle, or another relay leads)."""
        self.leading = await asyncio.to_thread(self.hold_lease)
        if not self.leading:
            return 0
        events = await asyncio.to_thread(self.unpublished)
        if not events:
            return 0
        handled = await asyncio.to_thread(self.run_handlers, events)
        if not handled:
            return 0
        await self.publisher.publish(handled)
        return await asyncio.to_thread(self.mark_published, handled)

    def hold_lease(self) -> bool:
        """Take or renew the relay lease; False while another live relay holds it.

        A leader renews only once half its lease has run, so an idle relay does not write on
        every poll.
        """
        now = utcnow()
        half = timedelta(seconds=self.lease_seconds / 2)
        if self._lease_until is not None and self._lease_until - now > half:
            return True
        expires = now + timedelta(seconds=self.lease_seconds)
        with self.sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            session.execute(
                insert(RelayLease)
                .values(name=LEASE_NAME, holder=self.holder, expires_at=expires)
                .on_conflict_do_nothing(index_elements=[RelayLease.name])
            )
            taken = session.execute(
                update(RelayLease)
                .where(
                    RelayLease.name == LEASE_NAME,
                    or_(RelayLease.holder == self.holder, RelayLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            )
            held = bool(taken.rowcount)  # type: ignore[attr-defined]
        self._lease_until = expires if held else None
        return held

    def release_lease(self) -> None:
        self._lease_until = None
        with self.sessions() as session, session.begin():
            session.execute(
                update(RelayLease)
                .where(RelayLease.name == LEASE_NAME, RelayLease.holder == self.holder)
                .values(expires_at=utcnow())
            )

    def unpublished(self) -> list[PublishedEvent]:
        with self.reader() as session:
            rows = session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.seq)
                .limit(self.batch_size)
            )
            return [PublishedEvent.of(row) for row in rows]

    def run_handlers(self, events: Sequence[PublishedEvent]) -> list[PublishedEvent]:
        """Run every handler of every event; returns the events all of whose handlers ran.

        Each handler runs in its own transaction with its handled-event record. After a failure
        the aggregate's later events in this batch wait, so they never overtake it.
        """
        blocked: set[tuple[str, str]] = set()
        done: list[PublishedEvent] = []
        for event in events:
            aggregate = (event.aggregate_type, event.aggregate_id)
            if aggregate in blocked:
                continue
            for registration in list(HANDLERS.get(event.type, ())):
                try:
                    with self.sessions() as session, session.begin():
                        handle(session, registration, event)
                except Exception:
                    log.exception(
                        "event handler failed; the event will be delivered again",
                        extra={"consumer": registration.consumer, "event_id": str(event.id)},
                    )
                    blocked.add(aggregate)
                    break
            else:
                done.append(event)
        return done

    def mark_published(self, events: Sequence[PublishedEvent]) -> int:
        """Mark the events published, number them, enqueue their webhooks: one transaction."""
        with self.sessions() as session, session.begin():
            marked = set(
                session.scalars(
                    update(OutboxEvent)
                    .where(
                        OutboxEvent.seq.in_([e.seq for e in events]),
                        OutboxEvent.published_at.is_(None),
                    )
                    .values(published_at=utcnow())
                    .returning(OutboxEvent.seq)
                )
            )
            if not marked:
                return 0
            first = (session.scalar(select(func.max(OutboxEvent.published_seq))) or 0) + 1
            session.execute(
                update(OutboxEvent),
                [{"seq": seq, "published_seq": first + n} for n, seq in enumerate(sorted(marked))],
            )
            enqueue_deliveries(session, [e for e in events if e.seq in marked])
            return len(marked)
