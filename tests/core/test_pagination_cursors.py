"""A cursor is opaque: one this list handed out pages on; any other answers 422 naming ``cursor``
before the database sees it, on SQLite as on PostgreSQL — never a 500."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import Factory
from zhongtai.catalog.models import Sku
from zhongtai.core.auth.roles import Role
from zhongtai.core.errors import InvalidInput
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.integrations.models import WebhookDelivery

STORES = "/api/v1/stores"
MAX_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
MAX_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"


def forged(values: Any) -> str:
    """A cursor made the way the API makes them, around values it never handed out."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def assert_refused_naming_cursor(answer: Any) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/validation-error")
    assert [e["field"] for e in answer.json()["errors"]] == ["cursor"]


def test_a_handed_out_cursor_pages_through_stores_with_chinese_codes_once_each(
    client: TestClient, factory: Factory
) -> None:
    made = {factory.location(code=f"沪-{i}", region="游标").code for i in range(5)}
    hq = factory.staff_headers(Role.HQ_ADMIN)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"region": "游标", "limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = client.get(STORES, params=params, headers=hq)
        assert answer.status_code == 200, answer.text
        seen += [s["code"] for s in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(["S\x00", str(uuid.uuid4())], id="nul-in-the-code"),
        pytest.param(["S\ud800", str(uuid.uuid4())], id="lone-surrogate-in-the-code"),
        pytest.param(["S0001", "\x00"], id="nul-as-the-id"),
        pytest.param(["S0001", 12345], id="number-as-the-id"),
        pytest.param(["S0001", None], id="null-as-the-id"),
        pytest.param(["S0001", ["a"]], id="list-as-the-id"),
        pytest.param([None, str(uuid.uuid4())], id="null-as-the-code"),
        pytest.param(["S0001"], id="one-value-for-two-keys"),
        pytest.param({"code": "S0001"}, id="an-object"),
    ],
)
def test_forged_store_cursor_with_values_the_database_cannot_take_is_a_422_naming_cursor(
    client: TestClient, factory: Factory, values: Any
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    assert_refused_naming_cursor(client.get(STORES, params={"cursor": forged(values)}, headers=hq))


def test_forged_cursor_nested_past_any_json_depth_is_a_422_naming_cursor(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    deep = base64.urlsafe_b64encode(b"[" * 30_000).decode()
    assert_refused_naming_cursor(client.get(STORES, params={"cursor": deep}, headers=hq))


@pytest.mark.parametrize(
    ("key", "bits"),
    [
        pytest.param(Sku.base_price, 32, id="integer"),
        pytest.param(WebhookDelivery.event_seq, 64, id="bigint"),
    ],
)
def test_forged_cursor_with_an_integer_wider_than_its_column_is_refused_naming_cursor(
    session: Session, key: Any, bits: int
) -> None:
    """No list keys on an integer column yet; ``paginate`` keeps such a value off the database
    all the same, and takes every value the column can hold."""
    keys = [key, key.class_.id]
    stmt = select(key.class_)
    half = 2 ** (bits - 1)
    for bad in (half, -half - 1, 2**64, True, 1.5, "1"):
        with pytest.raises(InvalidInput) as refused:
            paginate(session, stmt, keys, PageParams(cursor=forged([bad, str(uuid.uuid4())])))
        assert refused.value.errors == [
            {"field": "cursor", "message": "is not a cursor this list handed out"}
        ]
    after_the_widest, _ = paginate(
        session, stmt, keys, PageParams(cursor=forged([half - 1, MAX_ID]))
    )
    assert after_the_widest == []
    paginate(session, stmt, keys, PageParams(cursor=forged([-half, MAX_ID])))
