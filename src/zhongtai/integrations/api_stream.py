"""The live event stream: `GET /events/stream` as Server-Sent Events with Last-Event-ID resume."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.db import Database
from zhongtai.core.http.deps import database
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.integrations.handlers import PublishedEvent
from zhongtai.integrations.stream import events_after, parse_last_event_id, parse_types, sse_frame

router = api_router(tags=["events"])
POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
BATCH = 200


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    types: str | None = Query(
        None, description="Comma-separated event types (default: every type)."
    ),
    store_id: uuid.UUID | None = Query(None, description="Only this store's events."),
    last_event_id: str | None = Header(
        None, alias="Last-Event-ID", description="Resume after this event id (sent by the browser)."
    ),
    follow: bool = Query(
        True, description="Keep the stream open for new events (false: end once caught up)."
    ),
    principal: Principal = Depends(require(Permission.EVENTS_READ)),
) -> StreamingResponse:
    """Published events as they happen, as `text/event-stream`.

    Each event's SSE `id` is its publication number: reconnecting with `Last-Event-ID` resumes
    right after it, with nothing skipped. A store-bound caller (store staff, a POS key) sees only
    its stores' events; chain-wide callers see every event, or one store's with `store_id`.
    """
    wanted = parse_types(types)
    after = parse_last_event_id(last_event_id)
    if store_id is not None:
        principal.ensure_store(store_id)
        stores: frozenset[uuid.UUID] | None = frozenset({store_id})
    else:
        stores = principal.store_ids
    return event_stream(request, after, wanted, stores, follow=follow)


def event_stream(
    request: Request,
    after: int,
    types: frozenset[str] | None,
    stores: frozenset[uuid.UUID] | None,
    *,
    follow: bool,
    aggregate: tuple[str, str] | None = None,
) -> StreamingResponse:
    """A Server-Sent Events response of the published events that pass the filters."""
    return StreamingResponse(
        _frames(
            request, database(request), after, types, stores, follow=follow, aggregate=aggregate
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _frames(
    request: Request,
    db: Database,
    after: int,
    types: frozenset[str] | None,
    stores: frozenset[uuid.UUID] | None,
    *,
    follow: bool,
    aggregate: tuple[str, str] | None = None,
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        batch = await asyncio.to_thread(_read, db, after, types, stores, aggregate)
        for number, event in batch:
            yield sse_frame(number, event)
            after = number
        if len(batch) == BATCH:
            continue
        if not follow:
            return
        if batch:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)


def _read(
    db: Database,
    after: int,
    types: frozenset[str] | None,
    stores: frozenset[uuid.UUID] | None,
    aggregate: tuple[str, str] | None,
) -> list[tuple[int, PublishedEvent]]:
    with db.reader() as session:
        return list(
            events_after(
                session, after, types=types, store_ids=stores, limit=BATCH, aggregate=aggregate
            )
        )
