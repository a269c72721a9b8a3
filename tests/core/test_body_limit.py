"""Request bodies are limited in size: a declared length beyond the limit is refused before the
endpoint runs, a streamed body as soon as it passes the limit (the rest is not read), with a
413 problem, and the refused request changes nothing. Bulk routes (imports, the POS offline
batch) declare a larger limit where they are."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from zhongtai.app import create_app
from zhongtai.core.auth.models import ApiKey
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.db import Database
from zhongtai.core.idempotency import IdempotencyRecord
from zhongtai.core.settings import Settings
from zhongtai.integrations.import_models import ImportBatch
from zhongtai.integrations.providers import Providers

MiB = 1024 * 1024
SMALL = 4096
SMALL_BULK = 64 * 1024
PRODUCTS_HEADER = (
    "product_code,product_name,category_code,kind,unit,sku_code,sku_name,base_price,barcode\n"
)


def _api_keys(session: Session, name: str) -> int:
    return session.scalar(select(func.count()).where(ApiKey.name == name)) or 0


def _records(session: Session, key: str) -> int:
    return session.scalar(select(func.count()).where(IdempotencyRecord.key == key)) or 0


def _assert_refused(answer: Any, max_bytes: int) -> None:
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["connection"] == "close"
    problem = answer.json()
    assert problem["type"] == "https://zhongtai.dev/problems/request-too-large"
    assert (problem["status"], problem["max_bytes"]) == (413, max_bytes)


@pytest.fixture
def small_app(settings: Settings, test_db: Database, providers: Providers) -> FastAPI:
    """The API with limits small enough to pass in a test: 4 KiB, 64 KiB for bulk routes."""
    limited = settings.model_copy(
        update={"max_body_bytes": SMALL, "max_bulk_body_bytes": SMALL_BULK}
    )
    return create_app(limited, db=test_db, providers=providers, desk_db=test_db)


@pytest.fixture
def small_client(small_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(small_app, base_url="http://testserver") as c:
        yield c


def test_a_body_longer_than_the_limit_is_a_413_problem_that_changes_and_binds_nothing(
    client: TestClient, factory: Factory, session: Session
) -> None:
    admin = {**factory.staff_headers(Role.HQ_ADMIN), "Idempotency-Key": "too-large-1"}
    huge = {"name": "x" * MiB, "channel": "app"}  # the default limit: 1 MiB

    refused = client.post("/api/v1/api-keys", json=huge, headers=admin)

    _assert_refused(refused, MiB)
    assert refused.json()["instance"] == "/api/v1/api-keys"
    assert refused.headers["x-request-id"]
    assert _records(session, "too-large-1") == 0
    retried = client.post(
        "/api/v1/api-keys", json={"name": "small", "channel": "app"}, headers=admin
    )
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert _api_keys(session, "small") == 1


def test_the_default_limit_is_one_mib_and_the_bulk_limit_holds_a_50000_row_import() -> None:
    defaults = Settings.model_construct()  # the declared defaults, whatever the environment says
    assert defaults.max_body_bytes == MiB
    # A product master row with every column, as an ERP writes it in pretty-printed JSON with
    # non-ASCII escaped (the largest common spelling): 50,000 of them fit twice over.
    row = {
        "product_code": "P-000012345",
        "product_name": "金龙鱼 花生油 压榨一级 家庭装 5L 桶装",
        "category_code": "GROCERY-OIL-01",
        "kind": "standard",
        "unit": "piece",
        "sku_code": "SKU-000012345-01",
        "sku_name": "金龙鱼 花生油 压榨一级 5L",
        "base_price": 12990,
        "price_per": 1,
        "size": "XL",
        "colour": "深蓝色",
        "barcode": "6946389010558",
        "brand": "金龙鱼",
        "shelf_life_days": 540,
    }
    rows = json.dumps([row] * 50_000, indent=2).encode()
    assert 2 * len(rows) < defaults.max_bulk_body_bytes
    # The largest offline batch the schema allows: 500 sales of 200 lines, pretty-printed.
    line = {"sku_id": str(uuid.uuid4()), "quantity": 1250, "unit_price": 129900}
    sale = {
        "client_sale_id": str(uuid.uuid4()),
        "store_id": str(uuid.uuid4()),
        "terminal_code": "T01",
        "occurred_at": "2026-11-25T08:00:00.123456+08:00",
        "lines": [line] * 200,
        "tenders": [{"type": "bank_card", "amount": 100}] * 10,
        "member_id": str(uuid.uuid4()),
        "guide_id": str(uuid.uuid4()),
    }
    batch = json.dumps({"sales": [sale] * 500}, indent=2).encode()
    assert len(batch) < defaults.max_bulk_body_bytes
    assert len(batch) > MiB  # so the batch route needs the bulk limit


def test_the_limits_are_settings_and_bulk_routes_take_the_larger_one(
    small_client: TestClient, factory: Factory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    erp = factory.api_key_headers(Channel.ERP)
    csv = {**erp, "Content-Type": "text/csv"}
    rows = "".join(f"P{i},梨,NO-SUCH,standard,piece,P{i}-1,单个,350,\n" for i in range(400))
    assert SMALL < len((PRODUCTS_HEADER + rows).encode()) < SMALL_BULK

    not_bulk = small_client.post(
        "/api/v1/api-keys", json={"name": "n" * SMALL, "channel": "app"}, headers=admin
    )
    loaded = small_client.post(
        "/api/v1/imports/products",
        params={"batch_id": "within-bulk"},
        content=(PRODUCTS_HEADER + rows).encode(),
        headers=csv,
    )
    too_big = small_client.post(
        "/api/v1/imports/products",
        params={"batch_id": "beyond-bulk"},
        content=(PRODUCTS_HEADER + rows * 20).encode(),
        headers=csv,
    )

    _assert_refused(not_bulk, SMALL)
    assert loaded.status_code == 201, loaded.text
    assert loaded.json()["rows_total"] == 400
    _assert_refused(too_big, SMALL_BULK)
    batches = select(ImportBatch.batch_id).where(ImportBatch.batch_id.like("%-bulk"))
    assert session.scalars(batches).all() == ["within-bulk"]


def test_the_pos_offline_batch_takes_the_bulk_limit(
    small_client: TestClient, factory: Factory
) -> None:
    till = factory.api_key_headers(Channel.POS)
    sale = {
        "client_sale_id": str(uuid.uuid4()),
        "lines": [{"sku_id": str(uuid.uuid4()), "quantity": 1}] * 100,
        "tenders": [],
    }
    body = json.dumps({"sales": [sale]}).encode()
    assert SMALL < len(body) < SMALL_BULK
    headers = {**till, "Content-Type": "application/json"}

    within = small_client.post("/api/v1/pos/sales/batch", content=body, headers=headers)
    beyond = small_client.post(
        "/api/v1/pos/sales/batch",
        content=json.dumps({"sales": [sale] * 20}).encode(),
        headers=headers,
    )

    assert within.status_code != 413, within.text  # judged by the endpoint, not the limit
    _assert_refused(beyond, SMALL_BULK)


def test_a_route_that_never_reads_its_body_refuses_a_longer_one_before_it_runs(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)

    refused = client.post("/api/v1/auth/logout", content=b"x" * (MiB + 1), headers=admin)

    _assert_refused(refused, MiB)
    assert client.get("/api/v1/auth/me", headers=admin).status_code == 200  # still logged in


class _Upload:
    """Drives the ASGI app as a server would: the body in chunks, pulled one by one."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""

    def run(self, app: FastAPI, path: str, headers: dict[str, str]) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        asyncio.run(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if self.pulled < len(self.chunks):
            self.pulled += 1
            more = self.pulled < len(self.chunks)
            return {"type": "http.request", "body": self.chunks[self.pulled - 1], "more_body": more}
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def test_a_streamed_body_is_refused_once_it_passes_the_limit_and_the_rest_is_never_read(
    small_app: FastAPI, factory: Factory, session: Session
) -> None:
    admin = {
        **factory.staff_headers(Role.HQ_ADMIN),
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",  # no Content-Length: only counting can tell
        "Idempotency-Key": "streamed-1",
    }
    chunk = 512
    body = json.dumps({"name": "s" * (SMALL * 8), "channel": "app"}).encode()
    upload = _Upload([body[i : i + chunk] for i in range(0, len(body), chunk)])

    upload.run(small_app, "/api/v1/api-keys", admin)

    assert upload.status == 413
    assert upload.headers["content-type"] == "application/problem+json"
    assert json.loads(upload.body)["max_bytes"] == SMALL
    assert upload.pulled == SMALL // chunk + 1  # the chunk that passed it, and not one more
    assert len(upload.chunks) > 4 * upload.pulled
    assert _records(session, "streamed-1") == 0


def test_a_length_beyond_every_route_is_refused_before_anything_even_authentication(
    small_app: FastAPI,
) -> None:
    upload = _Upload([b"{}"])

    upload.run(small_app, "/api/v1/api-keys", {"Content-Length": str(SMALL_BULK + 1)})

    assert upload.status == 413
    assert json.loads(upload.body)["max_bytes"] == SMALL_BULK
    assert upload.pulled == 0
