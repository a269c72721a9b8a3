"""Reads of the live event stream: published events after a resume point, by type and store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.errors import InvalidInput
from zhongtai.core.outbox import EVENT_TYPES, OutboxEvent
from zhongtai.integrations.handlers import PublishedEvent


def parse_types(raw: str | None) -> frozenset[str] | None:
    """``"a.b,c.d"`` → the declared names; None for every type; 422 naming ``types`` otherwise."""
    if raw is None or not raw.strip():
        return None
    names = frozenset(t.strip() for t in raw.split(",") if t.strip())
    unknown = sorted(names - EVENT_TYPES.keys())
    if unknown:
        raise InvalidInput.field("types", f"unknown event types {unknown}; see docs/events.md")
    return names


def parse_last_event_id(raw: str | None) -> int:
    """The SSE ``Last-Event-ID`` (a publication number); 0 to start from the beginning."""
    if raw is None or raw == "":
        return 0
    if not raw.isdigit():
        raise InvalidInput.field("Last-Event-ID", "must be the id of an event this stream sent")
    return int(raw)


def events_after(
    session: Session,
    after: int,
    *,
    types: Collection[str] | None,
    store_ids: Collection[uuid.UUID] | None,
    limit: int,
    aggregate: tuple[str, str] | None = None,
) -> list[tuple[int, PublishedEvent]]:
    """Published events numbered after ``after``, oldest first, with their publication numbers.

    ``store_ids`` None: every event; otherwise only those stores' events (chain-wide events
    belong to no store and are left out). ``aggregate`` (type, id): only one thing's events,
    e.g. ``("order", order_id)`` for a customer following an order.
    """
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.published_seq > after)
        .order_by(OutboxEvent.published_seq)
        .limit(limit)
    )
    if types is not None:
        stmt = stmt.where(OutboxEvent.type.in_(sorted(types)))
    if store_ids is not None:
        stmt = stmt.where(OutboxEvent.store_id.in_(list(store_ids)))
    if aggregate is not None:
        stmt = stmt.where(
            OutboxEvent.aggregate_type == aggregate[0], OutboxEvent.aggregate_id == aggregate[1]
        )
    return [(row.published_seq or 0, PublishedEvent.of(row)) for row in session.scalars(stmt)]


def sse_frame(number: int, event: PublishedEvent) -> str:
    """One Server-Sent Events frame: ``id`` is the publication number, ``event`` the type."""
    data: dict[str, Any] = event.envelope()
    return f"id: {number}\nevent: {event.type}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
