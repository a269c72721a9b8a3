"""Reservations raced over real HTTP: the route holds stock through the app's reservation desk."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from tests.live_server import LiveServer
from tests.races import MANY_CONNECTIONS, race_server, requests_at_once
from zhongtai.core.auth.roles import Channel
from zhongtai.inventory import service
from zhongtai.inventory.models import StockBalance

pytestmark = MANY_CONNECTIONS
# More requests than the server has connections (50) or request slots.
CLIENTS = 64


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with race_server("zt_reserve_http") as srv:
        yield srv


def _store_with(server: LiveServer, on_hand: int) -> tuple[uuid.UUID, uuid.UUID, dict[str, str]]:
    """A store with one SKU of ``on_hand`` units, and its till's API key."""
    with server.db.writer() as s:
        stock = StockFactory(s, Factory(s))
        store, sku = stock.location(), stock.sku()
        stock.receive(store, sku, on_hand)
        headers = stock.factory.api_key_headers(Channel.POS, store=store)
        s.commit()
        return store.id, sku.id, headers


def test_64_requests_for_the_last_20_units_hold_exactly_20_through_the_desk_or_their_own_commit(
    server: LiveServer,
) -> None:
    """Half the requests carry an Idempotency-Key (held in their own transaction, beside the
    key's record), half not (held by the app's desk in batches): together, exactly the stock."""
    store, sku, headers = _store_with(server, on_hand=20)
    url = f"{server.url}/api/v1/inventory/reservations"

    def hold(i: int) -> Callable[[httpx.Client], httpx.Response]:
        body = {
            "reference": f"http-race-{i}",
            "location_id": str(store),
            "lines": [{"sku_id": str(sku), "quantity": 1}],
        }
        keyed = {**headers, "Idempotency-Key": f"k{i}"} if i % 2 else headers
        return lambda c: c.post(url, json=body, headers=keyed)

    # The key is checked against the database once; from then on it is verified in memory, and
    # requests without an Idempotency-Key open no transaction of their own: the desk holds them.
    warm = httpx.get(f"{server.url}/api/v1/inventory/locations/{store}/balances", headers=headers)
    assert warm.status_code == 200
    responses = requests_at_once([hold(i) for i in range(CLIENTS)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 20, statuses
    assert statuses.count(409) == CLIENTS - 20
    assert all(
        r.json()["type"].endswith("/insufficient-stock") for r in responses if r.status_code == 409
    )
    replayed = requests_at_once([hold(i) for i in range(CLIENTS)])
    # Held answers are stored and replayed; refusals are not stored, and are refused again.
    assert all(
        (r.headers.get("Idempotent-Replayed") == "true") == (r.status_code == 201) for r in replayed
    )
    with server.db.reader() as s:
        balance = s.get(StockBalance, (store, sku))
        assert balance is not None
        assert (balance.on_hand, balance.reserved) == (20, 20)
        assert service.verify_stock(s) == []
