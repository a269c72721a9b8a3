"""In-process event handlers: contexts react to each other's events here instead of importing them.

A handler is registered with :func:`on_event` and receives the published event and a session;
the relay runs it in a transaction of its own, which also records (consumer, event id) so that a
redelivered event does not run the handler twice (:func:`claim_event`).

A handler of a frequent event registered with :func:`on_events` receives a list of events: the
relay hands it all the events of that type in a pass, in seq order, in one transaction with one
claim statement (:func:`claim_events`), instead of a transaction per event.

A handler that has nothing to do in some state of the chain (a marketplace stock push with no
marketplace connected) is registered with ``only_if``: a cheap read the relay asks once per
pass; while it answers False, the handler's events pass it by unclaimed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.outbox import EVENT_TYPES, OutboxEvent
from zhongtai.integrations.models import HandledEvent


@dataclass(frozen=True)
class PublishedEvent:
    """An outbox event as handlers, webhooks, the stream and the broker see it."""

    seq: int
    id: uuid.UUID
    type: str
    version: int
    aggregate_type: str
    aggregate_id: str
    store_id: uuid.UUID | None
    occurred_at: datetime
    payload: dict[str, Any]
    request_id: str | None
    actor: str | None

    @classmethod
    def of(cls, row: OutboxEvent) -> PublishedEvent:
        return cls(
            seq=row.seq,
            id=row.id,
            type=row.type,
            version=row.version,
            aggregate_type=row.aggregate_type,
            aggregate_id=row.aggregate_id,
            store_id=row.store_id,
            occurred_at=row.occurred_at,
            payload=row.payload,
            request_id=row.request_id,
            actor=row.actor,
        )

    def envelope(self) -> dict[str, Any]:
        """The JSON document webhooks, the stream and the broker carry."""
        return {
            "id": str(self.id),
            "seq": self.seq,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "store_id": str(self.store_id) if self.store_id else None,
            "request_id": self.request_id,
            "payload": self.payload,
        }


EventHandler = Callable[[PublishedEvent, Session], None]
BatchHandler = Callable[[list[PublishedEvent], Session], None]
Condition = Callable[[Session], bool]


@dataclass(frozen=True)
class Registration:
    consumer: str
    event_type: str
    handler: EventHandler
    #: Set for handlers registered with :func:`on_events`: they take a list of events.
    batch_handler: BatchHandler | None = None
    #: Whether the handler has anything to do now (None: always). While it answers False the
    #: handler's events pass it by, unclaimed; whatever makes it True must itself catch up on
    #: what was passed by (see :func:`on_events`).
    only_if: Condition | None = None


#: Handlers by event type, in registration order.
HANDLERS: dict[str, list[Registration]] = {}


def on_event(name: str, *, consumer: str | None = None) -> Callable[[EventHandler], EventHandler]:
    """Register the decorated function as a handler of event ``name``.

    ``consumer`` names the handler in the handled-events record (default: module.function);
    renaming it makes the handler see every still-unpublished event again.
    """

    def register(handler: EventHandler) -> EventHandler:
        _register(name, consumer or f"{handler.__module__}.{handler.__qualname__}", handler, None)
        return handler

    return register


def on_events(
    name: str, *, consumer: str | None = None, only_if: Condition | None = None
) -> Callable[[BatchHandler], BatchHandler]:
    """Register the decorated function as a handler of batches of event ``name``.

    It receives the events (one or more, in seq order) and a session, and must handle each of
    them; it runs in one transaction with the claims of all of them. Should it fail, the relay
    hands it the events one at a time, so that only the failing one's aggregate waits.

    ``only_if`` (a read in the session it is given) tells whether the handler has anything to
    do now; the relay asks it once per pass, and while it answers False the events pass the
    handler by without a claim. Only for a handler whose state catches up by itself when the
    condition turns True (the marketplace push marks every SKU dirty when a connection is
    created or switched on), since the events passed by are not seen again.
    """

    def register(handler: BatchHandler) -> BatchHandler:
        def one(event: PublishedEvent, session: Session) -> None:
            handler([event], session)

        who = consumer or f"{handler.__module__}.{handler.__qualname__}"
        _register(name, who, one, handler, only_if)
        return handler

    return register


def _register(
    name: str,
    who: str,
    handler: EventHandler,
    batch_handler: BatchHandler | None,
    only_if: Condition | None = None,
) -> None:
    if name not in EVENT_TYPES:
        raise ValueError(f"no event type {name!r} is declared")
    registered = HANDLERS.setdefault(name, [])
    if any(r.consumer == who for r in registered):
        raise ValueError(f"consumer {who!r} already handles {name!r}")
    registered.append(Registration(who, name, handler, batch_handler, only_if))


def unregister(consumer: str) -> None:
    """Drop a consumer's handlers (tests and plug-ins that unload)."""
    for name, registered in list(HANDLERS.items()):
        HANDLERS[name] = [r for r in registered if r.consumer != consumer]


def claim_event(session: Session, consumer: str, event_id: uuid.UUID) -> bool:
    """Record that ``consumer`` handles ``event_id`` in this transaction; False if it already did.

    The primary key decides: of two concurrent claims one inserts, the other fails (and its
    transaction, holding the handler's effects, must then be rolled back by the caller).
    """
    try:
        with session.begin_nested():
            session.execute(insert(HandledEvent).values(consumer=consumer, event_id=event_id))
    except IntegrityError:
        return False
    return True


_HANDLED: Table = HandledEvent.__table__  # type: ignore[assignment]


def claim_events(session: Session, consumer: str, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Record that ``consumer`` handles these events in this transaction; returns those it had
    not handled before. One ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (a concurrent claim
    of the same event waits for the other transaction, then finds it taken)."""
    if not event_ids:
        return set()
    now = utcnow()
    insert = conflict_insert(session)
    return set(
        session.scalars(
            insert(_HANDLED)
            .values([{"consumer": consumer, "event_id": x, "handled_at": now} for x in event_ids])
            .on_conflict_do_nothing()
            .returning(_HANDLED.c.event_id)
        )
    )


def handle_batch(session: Session, registration: Registration, events: list[PublishedEvent]) -> int:
    """Run a batch handler for the events it has not handled yet; returns how many it ran for."""
    assert registration.batch_handler is not None
    claimed = claim_events(session, registration.consumer, [e.id for e in events])
    fresh = [e for e in events if e.id in claimed]
    if fresh:
        registration.batch_handler(fresh, session)
    return len(fresh)


def handle(session: Session, registration: Registration, event: PublishedEvent) -> bool:
    """Run one handler for one event unless it already ran; True when it ran now."""
    if not claim_event(session, registration.consumer, event.id):
        return False
    registration.handler(event, session)
    return True
