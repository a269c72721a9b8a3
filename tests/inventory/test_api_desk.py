"""The reserve endpoint of an app that owns its database, on the embedded default (SQLite).

The app's reservation desk writes on connections of its own. A request that opened its own
transaction (an Idempotency-Key's record, an API key checked against the database) holds
SQLite's one write lock until it answers; were it to wait for the desk, the desk would wait
for that lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import migrated
from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from zhongtai.app import create_app
from zhongtai.core.auth.roles import Channel
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings

URL = "/api/v1/inventory/reservations"
Basket = dict[str, Any]


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("desk") / "zhongtai.db"
    url = migrated.sqlite_file(path)
    return url


@pytest.fixture
def served(
    sqlite_url: str, settings: Settings
) -> Iterator[tuple[TestClient, dict[str, str], Basket]]:
    db = Database.connect(sqlite_url, pool_size=1, max_overflow=0)
    try:
        with db.writer() as s:
            stock = StockFactory(s, Factory(s))
            store, sku = stock.location(), stock.sku()
            stock.receive(store, sku, 5)
            headers = stock.factory.api_key_headers(Channel.POS, store=store)
            s.commit()
            basket = {"location_id": str(store.id), "lines": [{"sku_id": str(sku.id)}]}
    finally:
        db.dispose()
    own = settings.model_copy(update={"database_url": sqlite_url, "reservation_sweep_seconds": 0})
    with TestClient(create_app(own)) as client:
        yield client, headers, basket


def _body(basket: Basket, reference: str, quantity: int) -> dict[str, Any]:
    return {
        "reference": reference,
        "location_id": basket["location_id"],
        "lines": [{**basket["lines"][0], "quantity": quantity}],
    }


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def test_with_an_idempotency_key_the_hold_is_made_in_the_requests_own_transaction(
    served: tuple[TestClient, dict[str, str], Basket],
) -> None:
    client, headers, basket = served
    short = client.post(URL, json=_body(basket, "big", 6), headers=_keyed(headers, "till-1"))
    assert short.status_code == 409, short.text
    assert short.json()["type"].endswith("/insufficient-stock")
    held = client.post(
        URL, json=_body(basket, "small", 2), headers={**headers, "Idempotency-Key": "till-2"}
    )
    assert held.status_code == 201, held.text
    replayed = client.post(
        URL, json=_body(basket, "small", 2), headers={**headers, "Idempotency-Key": "till-2"}
    )
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == held.json()["id"]


def test_without_a_key_the_desk_holds_it_and_answers_a_retry_with_the_same_reservation(
    served: tuple[TestClient, dict[str, str], Basket],
) -> None:
    client, headers, basket = served
    # The first request checks the API key against the database (in its own transaction);
    # later ones find it verified in memory and wait for the desk holding nothing.
    first = client.post(URL, json=_body(basket, "first", 1), headers=headers)
    assert first.status_code == 201, first.text
    held = client.post(URL, json=_body(basket, "desk-1", 2), headers=headers)
    assert held.status_code == 201, held.text
    again = client.post(URL, json=_body(basket, "desk-1", 2), headers=headers)
    assert again.status_code == 200 and again.json()["id"] == held.json()["id"]
    short = client.post(URL, json=_body(basket, "desk-2", 3), headers=headers)
    assert short.status_code == 409 and short.json()["type"].endswith("/insufficient-stock")
