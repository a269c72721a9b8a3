"""On PostgreSQL, many clients sending the same Idempotency-Key at once produce one effect."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from tests.live_server import LiveServer
from tests.races import MANY_CONNECTIONS, hq_admin_headers, race_server, requests_at_once
from zhongtai.core.auth.models import ApiKey
from zhongtai.core.db import Database

pytestmark = MANY_CONNECTIONS
CLIENTS = 32


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with race_server("zt_idem") as srv:
        yield srv


def _admin_headers(db: Database) -> dict[str, str]:
    return hq_admin_headers(db, f"admin-{threading.get_ident()}-{uuid.uuid4().hex[:8]}")


def _post_all(
    url: str, headers_list: list[dict[str, str]], body: dict[str, str]
) -> list[httpx.Response]:
    return requests_at_once(
        [lambda c, h=headers: c.post(url, json=body, headers=h) for headers in headers_list]
    )


def test_32_concurrent_duplicates_create_one_key_and_all_get_the_same_answer(
    server: LiveServer,
) -> None:
    admin = _admin_headers(server.db)
    headers = {**admin, "Idempotency-Key": "burst-1"}
    body = {"name": "burst key", "channel": "app"}
    responses = _post_all(f"{server.url}/api/v1/api-keys", [headers] * CLIENTS, body)
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == CLIENTS - 1
    with server.db.reader() as s:
        assert s.scalar(select(func.count()).where(ApiKey.name == "burst key")) == 1


def test_concurrent_requests_with_distinct_keys_each_take_effect_once(server: LiveServer) -> None:
    admin = _admin_headers(server.db)
    headers_list = [{**admin, "Idempotency-Key": f"distinct-{i % 8}"} for i in range(CLIENTS)]
    # Eight keys, four senders each: eight keys created, each answered identically four times.
    body = {"name": "distinct burst", "channel": "erp"}
    responses = _post_all(f"{server.url}/api/v1/api-keys", headers_list, body)
    assert {r.status_code for r in responses} == {201}
    by_key: dict[str, set[str]] = {}
    for h, r in zip(headers_list, responses, strict=True):
        by_key.setdefault(h["Idempotency-Key"], set()).add(r.json()["id"])
    assert all(len(ids) == 1 for ids in by_key.values())
    assert len({next(iter(ids)) for ids in by_key.values()}) == 8
    with server.db.reader() as s:
        assert s.scalar(select(func.count()).where(ApiKey.name == "distinct burst")) == 8
