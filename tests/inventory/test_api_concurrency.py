"""Reservations raced over real HTTP: the route holds stock through the app's reservation desk."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.factories import Factory
from tests.live_server import LiveServer
from tests.races import MANY_CONNECTIONS, race_server, requests_at_once
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
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
    with server.db.writer() as s, s.begin():
        factory = Factory(s)
        store = factory.location()
        category = catalog.create_category(s, code=f"H{store.code}", name="热卖", parent_id=None)
        product = catalog.create_product(
            s,
            code=f"H{store.code}",
            name="热卖",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[catalog.NewSku(code=f"H{store.code}-1", name="1", base_price=100)],
        )
        sku = product.skus[0].id
        service.receive_stock(s, store.id, [service.ReceiptLine(sku, on_hand)])
        headers = factory.api_key_headers(Channel.POS, store=store)
        return store.id, sku, headers


def test_64_requests_for_the_last_20_units_hold_exactly_20_even_with_idempotency_keys(
    server: LiveServer,
) -> None:
    """Every request carries an Idempotency-Key, so each holds a pooled connection while it
    waits for the desk: the desk has connections of its own and never waits for those."""
    store, sku, headers = _store_with(server, on_hand=20)
    url = f"{server.url}/api/v1/inventory/reservations"

    def hold(i: int) -> Callable[[httpx.Client], httpx.Response]:
        body = {
            "reference": f"http-race-{i}",
            "location_id": str(store),
            "lines": [{"sku_id": str(sku), "quantity": 1}],
        }
        return lambda c: c.post(url, json=body, headers={**headers, "Idempotency-Key": f"k{i}"})

    responses = requests_at_once([hold(i) for i in range(CLIENTS)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 20, statuses
    assert statuses.count(409) == CLIENTS - 20
    assert all(
        r.json()["type"].endswith("/insufficient-stock") for r in responses if r.status_code == 409
    )
    replayed = requests_at_once([hold(i) for i in range(CLIENTS)])
    assert [r.status_code for r in replayed] == statuses
    # Held answers are stored and replayed; refusals are not stored, and are refused again.
    assert all(
        (r.headers.get("Idempotent-Replayed") == "true") == (r.status_code == 201) for r in replayed
    )
    with server.db.reader() as s:
        balance = s.get(StockBalance, (store, sku))
        assert balance is not None
        assert (balance.on_hand, balance.reserved) == (20, 20)
        assert service.verify_stock(s) == []
