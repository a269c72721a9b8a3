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

Published events and delivered (or cancelled) webhook deliveries are pruned once older than the
retention (:func:`prune_history`); an event a pending or dead delivery still needs stays.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, Update, and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.broker import NoBroker, Publisher
from zhongtai.integrations.handlers import HANDLERS, PublishedEvent, handle, handle_batch
from zhongtai.integrations.models import (
    DeliveryStatus,
    HandledEvent,
    RelayLease,
    WebhookDelivery,
)
from zhongtai.integrations.webhook_queue import EVENT_COLUMNS, enqueue_deliveries, event_of_row

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
        every poll; a follower only reads the lease until it has expired (or was handed back).
        """
        now = utcnow()
        half = timedelta(seconds=self.lease_seconds / 2)
        if self._lease_until is not None and self._lease_until - now > half:
            return True
        if self._lease_until is None and self._held_by_another(now):
            return False  # a follower looks (one read) and writes only when it may take it
        expires = now + timedelta(seconds=self.lease_seconds)
        with self.sessions() as session, session.begin():
            insert = conflict_insert(session)
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

    def _held_by_another(self, now: datetime) -> bool:
        with self.reader() as session:
            return bool(session.scalar(_HELD_BY_ANOTHER, {"holder": self.holder, "now": now}))

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
            rows = session.connection().execute(
                select(*EVENT_COLUMNS)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.seq)
                .limit(self.batch_size)
            )
            return [event_of_row(row) for row in rows]

    def run_handlers(self, events: Sequence[PublishedEvent]) -> list[PublishedEvent]:
        """Run every handler of every event; returns the events all of whose handlers ran.

        Each handler runs in its own transaction with its handled-event record. After a failure
        the aggregate's later events in this batch wait, so they never overtake it. A batch
        handler (``on_events``) first takes all the pass's events of its type in one
        transaction; only if that fails does it see them one at a time, like the others. A
        handler whose ``only_if`` answers False this pass lets its events by, unclaimed.
        """
        idle = self._idle_consumers(events)
        batched = self._run_batch_handlers(events, idle)
        blocked: set[tuple[str, str]] = set()
        done: list[PublishedEvent] = []
        for event in events:
            aggregate = (event.aggregate_type, event.aggregate_id)
            if aggregate in blocked:
                continue
            for registration in list(HANDLERS.get(event.type, ())):
                if registration.consumer in idle or (registration.consumer, event.id) in batched:
                    continue
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

    def _idle_consumers(self, events: Sequence[PublishedEvent]) -> set[str]:
        """The consumers of these events' types whose ``only_if`` answers False now (one
        read-only session for all of them; none when no handler has a condition)."""
        conditional = {
            r.consumer: r.only_if
            for type_ in {e.type for e in events}
            for r in HANDLERS.get(type_, ())
            if r.only_if is not None
        }
        if not conditional:
            return set()
        with self.reader() as session:
            return {consumer for consumer, only_if in conditional.items() if not only_if(session)}

    def _run_batch_handlers(
        self, events: Sequence[PublishedEvent], idle: set[str]
    ) -> set[tuple[str, uuid.UUID]]:
        """(consumer, event id) of what the batch handlers handled, each in one transaction."""
        of_type: dict[str, list[PublishedEvent]] = {}
        for event in events:
            of_type.setdefault(event.type, []).append(event)
        handled: set[tuple[str, uuid.UUID]] = set()
        for type_, typed in of_type.items():
            for registration in list(HANDLERS.get(type_, ())):
                if registration.batch_handler is None or registration.consumer in idle:
                    continue
                if len(typed) < 2:
                    continue  # one event: the per-event path costs the same
                try:
                    with self.sessions() as session, session.begin():
                        handle_batch(session, registration, typed)
                except Exception:
                    log.warning(
                        "batch event handler failed; its events go one at a time",
                        exc_info=True,
                        extra={"consumer": registration.consumer, "events": len(typed)},
                    )
                    continue
                handled.update((registration.consumer, e.id) for e in typed)
        return handled

    def mark_published(self, events: Sequence[PublishedEvent]) -> int:
        """Mark the events published, number them, enqueue their webhooks: one transaction."""
        with self.sessions() as session, session.begin():
            # One Core statement on the session's connection: this runs every few milliseconds
            # under load. Each row is stamped and numbered by one UPDATE (one new row version,
            # not one per column), numbers following the highest given so far, in seq order.
            marked = set(session.connection().scalars(_mark_published(events, utcnow())))
            if not marked:
                return 0
            enqueue_deliveries(session, [e for e in events if e.seq in marked])
            return len(marked)


#: A follower's look at the lease, each pass: built once.
_HELD_BY_ANOTHER = select(
    exists().where(
        RelayLease.name == LEASE_NAME,
        RelayLease.holder != bindparam("holder"),
        RelayLease.expires_at >= bindparam("now"),
    )
)


def _mark_published(events: Sequence[PublishedEvent], now: datetime) -> Update:
    """UPDATE the unpublished ones of these events: ``published_at`` and the next
    ``published_seq`` numbers in seq order; RETURNING their seq. Only the leading relay marks,
    so no other writer takes numbers meanwhile (and the unique index would refuse a repeat)."""
    outbox = cast(Table, OutboxEvent.__table__)
    given = outbox.alias("given")
    numbered = (
        select(
            outbox.c.seq,
            (
                select(func.coalesce(func.max(given.c.published_seq), 0)).scalar_subquery()
                + func.row_number().over(order_by=outbox.c.seq)
            ).label("published_seq"),
        )
        .where(outbox.c.seq.in_([e.seq for e in events]), outbox.c.published_at.is_(None))
        .cte("numbered")
    )
    return (
        update(outbox)
        .where(outbox.c.seq == numbered.c.seq, outbox.c.published_at.is_(None))
        .values(published_at=now, published_seq=numbered.c.published_seq)
        .returning(outbox.c.seq)
    )


@dataclass(frozen=True)
class Pruned:
    """How many rows a prune removed."""

    events: int = 0
    deliveries: int = 0
    handled: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.events + other.events,
            self.deliveries + other.deliveries,
            self.handled + other.handled,
        )


def prune_chunk(
    session: Session, *, before: datetime, after_published_seq: int, limit: int
) -> tuple[Pruned, int | None]:
    """Prune among the ``limit`` oldest events published after ``after_published_seq``.

    Of those published before ``before``: their delivered webhook deliveries go, and those
    cancelled before ``before``, then every event with no delivery left (a pending, dead or
    recently cancelled one keeps its event, which it still sends or may be re-driven to send),
    then the handlers' receipts of the events that went (nothing can replay those any more).
    The newest event by ``seq`` and by ``published_seq`` always stays, so neither numbering
    starts again below what consumers have seen. Returns what went and where the next chunk
    starts (None: no older events left).
    """
    newest_seq = session.scalar(select(func.max(OutboxEvent.seq)))
    newest_published = session.scalar(select(func.max(OutboxEvent.published_seq)))
    # The publication order is the order of publication time, so the oldest are a prefix of
    # the published_seq index: walking it costs the rows pruned, not the rows kept.
    rows = session.execute(
        select(OutboxEvent.seq, OutboxEvent.id, OutboxEvent.published_seq, OutboxEvent.published_at)
        .where(OutboxEvent.published_seq > after_published_seq)
        .order_by(OutboxEvent.published_seq)
        .limit(limit)
    ).all()
    aged = [row for row in rows if row.published_at is not None and row.published_at < before]
    more = len(rows) == limit and len(aged) == len(rows)
    next_after = int(rows[-1].published_seq) if more else None
    old = [r for r in aged if r.seq != newest_seq and r.published_seq != newest_published]
    if not old:
        return Pruned(), next_after
    ids = [row.id for row in old]
    bulk = {"synchronize_session": False}
    deliveries = session.execute(
        delete(WebhookDelivery)
        .where(
            WebhookDelivery.event_id.in_(ids),
            or_(
                WebhookDelivery.status == DeliveryStatus.DELIVERED,
                # Listed for the retention after it was cancelled, however old its event.
                and_(
                    WebhookDelivery.status == DeliveryStatus.CANCELLED,
                    WebhookDelivery.updated_at < before,
                ),
            ),
        )
        .execution_options(**bulk)
    )
    events = session.execute(
        delete(OutboxEvent)
        .where(
            OutboxEvent.seq.in_([row.seq for row in old]),
            OutboxEvent.published_at.is_not(None),
            ~exists().where(WebhookDelivery.event_id == OutboxEvent.id),
        )
        .execution_options(**bulk)
    )
    handled = session.execute(
        delete(HandledEvent)
        .where(
            HandledEvent.event_id.in_(ids),
            ~exists().where(OutboxEvent.id == HandledEvent.event_id),
        )
        .execution_options(**bulk)
    )
    pruned = Pruned(
        events=int(events.rowcount),  # type: ignore[attr-defined]
        deliveries=int(deliveries.rowcount),  # type: ignore[attr-defined]
        handled=int(handled.rowcount),  # type: ignore[attr-defined]
    )
    return pruned, next_after


def prune_history(
    sessions: sessionmaker[Session],
    *,
    before: datetime,
    chunk: int = 1000,
    keep_going: Callable[[], bool] = lambda: True,
) -> Pruned:
    """Prune what was published before ``before`` (events, and their delivered or cancelled
    webhook deliveries), a transaction per chunk so that on SQLite other writers wait for the lock a
    chunk at a time; stops early once ``keep_going()`` says so. Returns how many rows went."""
    total, after = Pruned(), 0
    while keep_going():
        with sessions() as session, session.begin():
            pruned, next_after = prune_chunk(
                session, before=before, after_published_seq=after, limit=chunk
            )
        total += pruned
        if next_after is None:
            break
        after = next_after
    return total
