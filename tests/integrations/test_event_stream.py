"""The live stream sends published events as SSE, filtered by type and store, and resumes after
the Last-Event-ID it was given without skipping or repeating an event."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.factories import TEST_SECRET, Factory
from tests.integrations.events import PriceTagged, ShelfCounted
from tests.live_server import LiveServer, live_server
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.outbox import record_event
from zhongtai.integrations.relay import Relay
from zhongtai.stores.models import Location

STREAM = "/api/v1/events/stream"


@pytest.fixture(scope="module")
def server(own_database_url: str) -> Iterator[LiveServer]:
    with live_server(own_database_url, secret=TEST_SECRET) as srv:
        yield srv


def _store(server: LiveServer) -> Location:
    with server.db.writer() as s:
        location = Factory(s).location()
        s.commit()
    return location


def _headers(
    server: LiveServer, role: Role, stores: list[Location] | None = None
) -> dict[str, str]:
    with server.db.writer() as s:
        return Factory(s).staff_headers(role, stores)


def _publish(server: LiveServer, tag: str, store_id: uuid.UUID | None) -> None:
    with server.db.writer() as s, s.begin():
        record_event(
            s, PriceTagged(tag=tag), aggregate_type="tag", aggregate_id=tag, store_id=store_id
        )
    relay = Relay(server.db.writer, holder="stream-tests")
    asyncio.run(relay.run_once())


def _read(
    server: LiveServer, n: int, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """The first ``n`` events of a stream (id, event, data), then hang up."""
    frames: list[dict[str, Any]] = []
    frame: dict[str, Any] = {}
    with httpx.stream(
        "GET", server.url + STREAM, headers=headers, params=params, timeout=20
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line == "":
                if "data" in frame:
                    frames.append(frame)
                    if len(frames) == n:
                        break
                frame = {}
                continue
            key, _, value = line.partition(": ")
            if key in ("id", "event"):
                frame[key] = value
            elif key == "data":
                frame["data"] = json.loads(value)
    return frames


def _shelf(server: LiveServer, shelf: str, store_id: uuid.UUID) -> None:
    with server.db.writer() as s, s.begin():
        record_event(
            s,
            ShelfCounted(shelf=shelf, n=1),
            aggregate_type="shelf",
            aggregate_id=shelf,
            store_id=store_id,
        )


def _tags(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["payload"].get("tag") or f["data"]["payload"]["shelf"] for f in frames]


def test_a_reconnecting_client_resumes_after_its_last_event_id(server: LiveServer) -> None:
    store = _store(server)
    for n in range(5):
        _publish(server, f"resume-{n}", store.id)
    hq = _headers(server, Role.HQ_ADMIN)
    first = _read(server, 2, hq, store_id=str(store.id))
    assert _tags(first) == ["resume-0", "resume-1"]
    assert {f["event"] for f in first} == {"test.price_tagged"}
    rest = _read(server, 3, {**hq, "Last-Event-ID": first[-1]["id"]}, store_id=str(store.id))
    assert _tags(rest) == ["resume-2", "resume-3", "resume-4"]
    ids = [int(f["id"]) for f in first + rest]
    assert ids == sorted(set(ids))


def test_store_staff_and_pos_keys_see_only_their_stores_events(server: LiveServer) -> None:
    own, other = _store(server), _store(server)
    _publish(server, "elsewhere", other.id)
    _publish(server, "chain-wide", None)
    _publish(server, "at-home", own.id)
    clerk = _headers(server, Role.STORE_STAFF, [own])
    assert _tags(_read(server, 1, clerk)) == ["at-home"]
    with server.db.writer() as s:
        pos = Factory(s).api_key_headers(Channel.POS, store=own)
    assert _tags(_read(server, 1, pos)) == ["at-home"]
    refused = httpx.get(
        server.url + STREAM, headers=clerk, params={"store_id": str(other.id)}, timeout=20
    )
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/store-out-of-scope")
    guide = _headers(server, Role.GUIDE, [own])
    assert httpx.get(server.url + STREAM, headers=guide, timeout=20).status_code == 403


def test_a_type_filter_keeps_only_those_types(server: LiveServer) -> None:
    store = _store(server)
    _publish(server, "tag-first", store.id)
    _shelf(server, "shelf-second", store.id)
    asyncio.run(Relay(server.db.writer, holder="stream-tests").run_once())
    hq = _headers(server, Role.HQ_ADMIN)
    frames = _read(server, 1, hq, store_id=str(store.id), types="test.shelf_counted")
    assert _tags(frames) == ["shelf-second"]
    assert frames[0]["event"] == "test.shelf_counted"


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"types": "test.shelf_counted,no.such_event"}, {}, "types"),
        ({}, {"Last-Event-ID": "abc"}, "Last-Event-ID"),
    ],
)
def test_bad_stream_requests_answer_422_naming_the_field(
    server: LiveServer, params: dict[str, str], headers: dict[str, str], field: str
) -> None:
    hq = _headers(server, Role.HQ_ADMIN)
    r = httpx.get(server.url + STREAM, headers={**hq, **headers}, params=params, timeout=20)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == field


def test_a_stream_without_follow_ends_once_caught_up(server: LiveServer) -> None:
    store = _store(server)
    _publish(server, "catch-up-1", store.id)
    _publish(server, "catch-up-2", store.id)
    hq = _headers(server, Role.HQ_ADMIN)
    r = httpx.get(
        server.url + STREAM,
        headers=hq,
        params={"store_id": str(store.id), "follow": "false"},
        timeout=20,
    )
    assert r.status_code == 200
    assert [line for line in r.text.splitlines() if line.startswith("event: ")] == [
        "event: test.price_tagged",
        "event: test.price_tagged",
    ]
