"""The transactional outbox: a change and the event announcing it commit together, or neither.

A service records an event with :func:`record_event` (on the busiest paths
:func:`write_event`) in the same session, so the same transaction, as the change itself. Event
types are declared once with :func:`event_type` on a pydantic payload model; the declarations
are the event catalogue (name, version, description, payload schema), from which documentation
is generated. Names are past tense (``stock.changed``). ``seq`` gives the order in which events
were recorded; events of one aggregate are recorded in the order of their changes as long as
the change locks the aggregate's row (which every state change does).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, insert_row
from zhongtai.core.ids import new_id

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    description: str
    payload: type[BaseModel]


#: Every declared event type by name: the event catalogue.
EVENT_TYPES: dict[str, EventType] = {}


def event_type(name: str, *, version: int = 1) -> Callable[[type[P]], type[P]]:
    """Declare a pydantic model as the payload of event ``name`` (its docstring describes it)."""

    def register(model: type[P]) -> type[P]:
        if "." not in name or name != name.lower():
            raise ValueError(f"event names are lower-case 'context.past_tense': {name!r}")
        existing = EVENT_TYPES.get(name)
        if existing is not None and existing.payload is not model:
            raise ValueError(f"event type {name!r} is declared twice")
        EVENT_TYPES[name] = EventType(
            name=name,
            version=version,
            description=inspect.cleandoc(model.__doc__ or ""),
            payload=model,
        )
        model.__event_type__ = name  # type: ignore[attr-defined]
        return model

    return register


class OutboxEvent(Base):
    """One event, written in the transaction of the change it announces."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_aggregate", "aggregate_type", "aggregate_id"),
        # The relay's work queue: only events not yet published, in seq order.
        Index(
            "ix_outbox_events_unpublished",
            "seq",
            sqlite_where=text("published_at IS NULL"),
            postgresql_where=text("published_at IS NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=new_id)
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[uuid.UUID | None]
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str | None] = mapped_column(String(80))
    #: Set by the relay once every in-process handler, the broker and the webhook queues have
    #: the event. Unpublished events are found by this marker, not by a high-water mark, so an
    #: event whose transaction commits after a later seq's is still delivered.
    published_at: Mapped[datetime | None]
    #: Publication order, gap-free and increasing in the relay's commit order (one relay leads
    #: at a time; the unique index stops two from handing out one number). Unlike ``seq`` it
    #: is safe to resume from: the live stream's ``Last-Event-ID``.
    published_seq: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), unique=True
    )


def record_event(
    session: Session,
    payload: BaseModel,
    *,
    aggregate_type: str,
    aggregate_id: str | uuid.UUID,
    store_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> OutboxEvent:
    """Add the event to the session's transaction. Nothing is published until it commits."""
    event = OutboxEvent(**_event_row(payload, aggregate_type, aggregate_id, store_id, occurred_at))
    session.add(event)
    return event


def write_event(
    session: Session,
    payload: BaseModel,
    *,
    aggregate_type: str,
    aggregate_id: str | uuid.UUID,
    store_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """As :func:`record_event`, but INSERTed at once by one Core statement rather than kept in
    the session for its flush: for the busiest paths, where the ORM's unit of work costs more
    than the INSERT (:func:`zhongtai.core.db.insert_row`: events keep the order they were
    recorded in)."""
    row = _event_row(payload, aggregate_type, aggregate_id, store_id, occurred_at)
    insert_row(session, OutboxEvent, row)


def _event_row(
    payload: BaseModel,
    aggregate_type: str,
    aggregate_id: str | uuid.UUID,
    store_id: uuid.UUID | None,
    occurred_at: datetime | None,
) -> dict[str, Any]:
    name = getattr(type(payload), "__event_type__", None)
    if name is None or name not in EVENT_TYPES:
        raise TypeError(f"{type(payload).__name__} is not a declared event payload")
    return {
        "id": new_id(),
        "type": name,
        "version": EVENT_TYPES[name].version,
        "aggregate_type": aggregate_type,
        "aggregate_id": str(aggregate_id),
        "store_id": store_id,
        "occurred_at": occurred_at or utcnow(),
        "payload": payload.model_dump(mode="json"),
        "request_id": context.request_id.get(),
        "actor": context.actor.get(),
    }
