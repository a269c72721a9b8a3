"""In-process event handlers: contexts react to each other's events here instead of importing them.

A handler is registered with :func:`on_event` and receives the published event and a session;
the relay runs it in a transaction of its own, which also records (consumer, event id) so that a
redelivered event does not run the handler twice (:func:`claim_event`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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


@dataclass(frozen=True)
class Registration:
    consumer: str
    event_type: str
    handler: EventHandler


#: Handlers by event type, in registration order.
HANDLERS: dict[str, list[Registration]] = {}


def on_event(name: str, *, consumer: str | None = None) -> Callable[[EventHandler], EventHandler]:
    """Register the decorated function as a handler of event ``name``.

    ``consumer`` names the handler in the handled-events record (default: module.function);
    renaming it makes the handler see every still-unpublished event again.
    """

    def register(handler: EventHandler) -> EventHandler:
        if name not in EVENT_TYPES:
            raise ValueError(f"no event type {name!r} is declared")
        who = consumer or f"{handler.__module__}.{handler.__qualname__}"
        registered = HANDLERS.setdefault(name, [])
        if any(r.consumer == who for r in registered):
            raise ValueError(f"consumer {who!r} already handles {name!r}")
        registered.append(Registration(consumer=who, event_type=name, handler=handler))
        return handler

    return register


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


def handle(session: Session, registration: Registration, event: PublishedEvent) -> bool:
    """Run one handler for one event unless it already ran; True when it ran now."""
    if not claim_event(session, registration.consumer, event.id):
        return False
    registration.handler(event, session)
    return True
