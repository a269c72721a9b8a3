"""HQ connects marketplaces by API, never to an internal address unless allowed, and sees the
signing secret once (it is stored sealed); a marketplace places its orders through the orders
API with its own order id, and a retried order is one order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from tests.orders.conftest import Chain, ok, place, quote

# The order builders' fixtures, used by name below.
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.settings import Settings
from zhongtai.integrations.api_marketplace import connection_guard, router
from zhongtai.integrations.marketplace import marketplace_secrets
from zhongtai.integrations.marketplace_models import MarketplaceConnection
from zhongtai.integrations.marketplace_settings import marketplace_settings
from zhongtai.integrations.sealed_secrets import SecretUnreadable
from zhongtai.integrations.targets import TargetGuard
from zhongtai.integrations.webhooks import webhook_secrets
from zhongtai.orders.models import Order
from zhongtai.stores.models import LocationKind

CONNECTIONS = "/api/v1/marketplace/connections"

#: What the made-up host names of these tests resolve to (no DNS server is asked).
NAMES = {
    "mt.example.com": ["93.184.215.14"],
    "other.example.com": ["93.184.215.15"],
    "intranet.example.com": ["93.184.215.16", "10.20.30.40"],
    "metadata.example.com": ["169.254.169.254"],
}


def _lookup(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise OSError(-2, "Name or service not known")
    return NAMES[host]


@pytest.fixture
def app(app: FastAPI) -> Iterator[FastAPI]:
    # Until the composition root lists the marketplace router, mount it here.
    if not any(getattr(r, "path", "") == CONNECTIONS for r in app.routes):
        app.include_router(router, prefix="/api/v1")
    app.dependency_overrides[connection_guard] = lambda: TargetGuard(resolve=_lookup)
    yield app
    app.dependency_overrides.pop(connection_guard, None)


def _connect(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        CONNECTIONS,
        headers=headers,
        json={"name": "meituan", "endpoint_url": "https://mt.example.com/stock", **body},
    )


def test_hq_connects_a_marketplace_and_sees_its_first_push_waiting(
    client: TestClient,
    factory: Factory,
    stock: StockFactory,
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = stock.location()
    sku = stock.sku()
    stock.receive(store, sku, 8)

    created = ok(_connect(client, hq, store_ids=[str(store.id)], min_interval_ms=500), 201)
    assert created["secret"].startswith("mksec_")
    assert created["channel"] == "marketplace:meituan"
    assert created["store_ids"] == [str(store.id)]
    assert created["active"] is True

    waiting = ok(client.get(f"{CONNECTIONS}/{created['id']}/stock?waiting=true", headers=hq))[
        "items"
    ]
    assert [(w["sku_id"], w["version"], w["pushed_version"]) for w in waiting] == [
        (str(sku.id), 1, 0)
    ]
    listed = ok(client.get(CONNECTIONS, headers=hq))["items"]
    assert [c["name"] for c in listed] == ["meituan"]
    assert "secret" not in listed[0]


def test_a_second_connection_with_the_same_name_is_a_conflict(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    ok(_connect(client, hq), 201)
    again = _connect(client, hq, endpoint_url="https://other.example.com/stock")
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("/conflict")


def test_the_secret_is_stored_sealed_and_opens_only_for_its_connection(
    client: TestClient, factory: Factory, session: Session, settings: Settings
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    given = "a-secret-hq-chose-for-meituan"
    first = ok(_connect(client, hq, secret=given), 201)
    second = ok(_connect(client, hq, name="eleme"), 201)
    assert first["secret"] == given
    sealed = dict(
        session.execute(select(MarketplaceConnection.id, MarketplaceConnection.secret_sealed)).all()
    )
    first_id, second_id = uuid.UUID(first["id"]), uuid.UUID(second["id"])
    assert given.encode() not in sealed[first_id]
    assert second["secret"].encode() not in sealed[second_id]
    sealer = marketplace_secrets(settings)
    assert sealer.open(first_id, sealed[first_id]) == given
    # Copied onto another connection, or opened as a webhook's secret, it does not open.
    with pytest.raises(SecretUnreadable, match="does not open"):
        sealer.open(second_id, sealed[first_id])
    with pytest.raises(SecretUnreadable, match="does not open"):
        webhook_secrets(settings).open(first_id, sealed[first_id])
    assert "secret" not in ok(client.get(f"{CONNECTIONS}/{first['id']}", headers=hq))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint_url": "ftp://mt.example.com/stock"}, "endpoint_url"),
        ({"name": "Meituan!"}, "name"),
        ({"channel": "Not A Channel"}, "channel"),
        ({"min_interval_ms": 1}, "min_interval_ms"),
        ({"secret": "short"}, "secret"),
    ],
)
def test_a_bad_connection_answers_422_naming_the_field(
    client: TestClient, factory: Factory, body: dict[str, Any], field: str
) -> None:
    r = _connect(client, factory.staff_headers(Role.HQ_ADMIN), **body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.text


INTERNAL_TARGETS = [
    ("http://127.0.0.1:5432/stock", "127.0.0.1 is a loopback address"),
    ("http://[::ffff:10.0.0.7]/stock", "10.0.0.7 is a private address"),
    (
        "https://intranet.example.com/stock",
        "intranet.example.com resolves to 10.20.30.40 is a private address",
    ),
    (
        "http://metadata.example.com/latest/meta-data",
        "metadata.example.com resolves to 169.254.169.254 is a link-local address",
    ),
    ("https://nowhere.example.com/stock", "nowhere.example.com does not resolve"),
]


def _refused_on_endpoint_url(r: Any, reason: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    [error] = r.json()["errors"]
    assert error["field"] == "endpoint_url"
    assert reason in error["message"]


@pytest.mark.parametrize(("url", "reason"), INTERNAL_TARGETS)
def test_a_connection_to_an_internal_address_answers_422_and_is_not_made(
    client: TestClient, factory: Factory, session: Session, url: str, reason: str
) -> None:
    r = _connect(client, factory.staff_headers(Role.HQ_ADMIN), endpoint_url=url)
    _refused_on_endpoint_url(r, reason)
    assert session.scalar(select(func.count()).select_from(MarketplaceConnection)) == 0


@pytest.mark.parametrize(("url", "reason"), INTERNAL_TARGETS)
def test_moving_a_connection_to_an_internal_address_answers_422_and_changes_nothing(
    client: TestClient, factory: Factory, url: str, reason: str
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    created = ok(_connect(client, hq, min_interval_ms=500), 201)
    here = f"{CONNECTIONS}/{created['id']}"

    r = client.patch(here, headers=hq, json={"endpoint_url": url, "min_interval_ms": 2000})
    _refused_on_endpoint_url(r, reason)
    kept = ok(client.get(here, headers=hq))
    assert (kept["endpoint_url"], kept["min_interval_ms"]) == ("https://mt.example.com/stock", 500)


def test_internal_targets_are_refused_by_default_and_taken_once_allowed(
    client: TestClient, app: FastAPI, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.dependency_overrides.pop(connection_guard)  # the real settings decide
    hq = factory.staff_headers(Role.HQ_ADMIN)
    bridge = "http://127.0.0.1:8081/stock"
    monkeypatch.delenv("ZHONGTAI_MARKETPLACE_ALLOW_PRIVATE_TARGETS", raising=False)
    marketplace_settings.cache_clear()
    try:
        _refused_on_endpoint_url(
            _connect(client, hq, endpoint_url=bridge), "127.0.0.1 is a loopback address"
        )
        monkeypatch.setenv("ZHONGTAI_MARKETPLACE_ALLOW_PRIVATE_TARGETS", "true")
        marketplace_settings.cache_clear()
        created = ok(_connect(client, hq, endpoint_url=bridge), 201)
        moved = client.patch(
            f"{CONNECTIONS}/{created['id']}",
            headers=hq,
            json={"endpoint_url": "http://10.1.2.3/stock"},
        )
        assert ok(moved)["endpoint_url"] == "http://10.1.2.3/stock"
    finally:
        monkeypatch.undo()
        marketplace_settings.cache_clear()


def test_a_connection_sells_only_from_stores_not_from_warehouses(
    client: TestClient, factory: Factory
) -> None:
    warehouse = factory.location(kind=LocationKind.WAREHOUSE)
    r = _connect(client, factory.staff_headers(Role.HQ_ADMIN), store_ids=[str(warehouse.id)])
    assert r.status_code == 422, r.text
    assert "store_ids" in r.text


def test_hq_pauses_a_connection_and_changes_its_stores(
    client: TestClient,
    factory: Factory,
    stock: StockFactory,
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    first, second = stock.location(), stock.location()
    stock.receive(second, stock.sku(), 3)
    created = ok(_connect(client, hq, store_ids=[str(first.id)]), 201)
    url = f"{CONNECTIONS}/{created['id']}"

    paused = ok(client.patch(url, headers=hq, json={"active": False}))
    assert paused["active"] is False and paused["store_ids"] == [str(first.id)]
    moved = ok(client.patch(url, headers=hq, json={"store_ids": [str(second.id)], "active": True}))
    assert moved["store_ids"] == [str(second.id)] and moved["active"] is True
    everywhere = ok(client.patch(url, headers=hq, json={"store_ids": None}))
    assert everywhere["store_ids"] is None
    assert ok(client.post(f"{url}/resync", headers=hq))["marked"] == 1, "the one SKU stocked"


def test_store_staff_may_not_manage_marketplaces(client: TestClient, factory: Factory) -> None:
    r = _connect(client, factory.staff_headers(Role.STORE_STAFF))
    assert r.status_code == 403, r.text


def _marketplace_quote(client: TestClient, chain: Chain, key: dict[str, str]) -> Any:
    return quote(
        client,
        key,
        {"fulfillment_type": "pickup", "store_id": str(chain.store.id), "lines": chain.basket(2)},
    )


def test_a_marketplace_order_sent_twice_with_its_own_id_is_one_order(
    client: TestClient,
    chain: Chain,
    factory: Factory,
    session: Session,
) -> None:
    key = factory.api_key_headers(Channel.MARKETPLACE)
    first_quote = _marketplace_quote(client, chain, key)
    order = place(client, key, first_quote["id"], channel_order_id="MT-20261126-0001")
    assert order["channel"] == "marketplace"
    assert order["channel_order_id"] == "MT-20261126-0001"

    # The marketplace did not hear the answer: it quotes and places the same order again.
    second_quote = _marketplace_quote(client, chain, key)
    again = client.post(
        "/api/v1/orders",
        json={"quote_id": second_quote["id"], "channel_order_id": "MT-20261126-0001"},
        headers=key,
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == order["id"]
    count = session.scalar(
        select(func.count()).select_from(Order).where(Order.channel_order_id == "MT-20261126-0001")
    )
    assert count == 1
