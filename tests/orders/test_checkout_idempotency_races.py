"""On PostgreSQL, duplicates of a quote or a placing sent at once (one Idempotency-Key, bound
when the first commits) take effect once, and every one of them answers that effect."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tests.factories import Factory
from tests.live_server import LiveServer
from tests.races import MANY_CONNECTIONS, race_server, requests_at_once
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Channel
from zhongtai.inventory import service as inventory
from zhongtai.inventory.models import StockBalance
from zhongtai.orders.models import Order, Quote
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability, PilotScope
from zhongtai.stores.service_pilot import upsert_pilot_rule

pytestmark = MANY_CONNECTIONS
CLIENTS = 16
_seq = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with race_server("zt_checkout_idem") as srv:
        yield srv


def _shop(server: LiveServer, on_hand: int) -> tuple[dict[str, str], uuid.UUID, uuid.UUID]:
    """A pickup store with ``on_hand`` units of one SKU, and an app key's headers."""
    n = next(_seq)
    with server.db.writer() as s, s.begin():
        store = Factory(s).location()
        stores.set_capability(s, store.id, Capability.PICKUP)
        upsert_pilot_rule(
            s, feature="pickup", scope=PilotScope.CHAIN, scope_value="*", enabled=True
        )
        category = catalog.create_category(s, code=f"IDEM{n}", name="idem", parent_id=None)
        product = catalog.create_product(
            s,
            code=f"IDEM{n}",
            name="限量",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[catalog.NewSku(code=f"IDEM{n}-0", name="0", base_price=1000)],
        )
        sku_id = product.skus[0].id
        inventory.receive_stock(s, store.id, [inventory.ReceiptLine(sku_id, on_hand)])
        key = auth.create_api_key(s, name=f"idem app {n}", channel=Channel.APP).full_key
    return {"X-API-Key": key}, store.id, sku_id


def _reserved(server: LiveServer, store_id: uuid.UUID, sku_id: uuid.UUID) -> int:
    with server.db.reader() as s:
        return s.scalars(
            select(StockBalance.reserved).where(
                StockBalance.location_id == store_id, StockBalance.sku_id == sku_id
            )
        ).one()


def test_16_duplicate_quotes_at_once_hold_the_stock_once_and_all_answer_that_quote(
    server: LiveServer,
) -> None:
    app, store_id, sku_id = _shop(server, on_hand=5)
    body = {
        "fulfillment_type": "pickup",
        "store_id": str(store_id),
        "lines": [{"sku_id": str(sku_id), "quantity": 2}],
    }
    headers = {**app, "Idempotency-Key": f"quote-burst-{uuid.uuid4()}"}
    url = f"{server.url}/api/v1/checkout/quotes"
    responses = requests_at_once(
        [lambda c: c.post(url, json=body, headers=headers) for _ in range(CLIENTS)]
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses][:3]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == CLIENTS - 1
    assert _reserved(server, store_id, sku_id) == 2
    with server.db.reader() as s:
        assert s.scalar(select(func.count()).where(Quote.store_id == store_id)) == 1


def test_16_duplicate_placings_at_once_make_one_order_and_all_answer_201_for_it(
    server: LiveServer,
) -> None:
    app, store_id, sku_id = _shop(server, on_hand=1)
    url = f"{server.url}/api/v1"
    quoted = requests_at_once(
        [
            lambda c: c.post(
                f"{url}/checkout/quotes",
                json={
                    "fulfillment_type": "pickup",
                    "store_id": str(store_id),
                    "lines": [{"sku_id": str(sku_id), "quantity": 1}],
                },
                headers=app,
            )
        ]
    )[0]
    assert quoted.status_code == 201, quoted.text
    headers = {**app, "Idempotency-Key": f"place-burst-{uuid.uuid4()}"}
    responses = requests_at_once(
        [
            lambda c: c.post(
                f"{url}/orders",
                json={"quote_id": quoted.json()["id"], "contact_name": "李先生"},
                headers=headers,
            )
            for _ in range(CLIENTS)
        ]
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses][:3]
    assert len({r.json()["id"] for r in responses}) == 1
    with server.db.reader() as s:
        assert s.scalar(select(func.count()).where(Order.store_id == store_id)) == 1
