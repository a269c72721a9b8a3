"""Price overrides per store and channel through HTTP: who may set them, windows, ending them."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from zhongtai.catalog.models import PriceOverride
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.clock import utcnow
from zhongtai.stores.models import LocationKind


def prices_url(sku_id: object) -> str:
    return f"/api/v1/catalog/skus/{sku_id}/prices"


def price_of(client: TestClient, sku_id: object, headers: dict[str, str], **params: str) -> int:
    r = client.get(f"/api/v1/catalog/skus/{sku_id}/price", params=params, headers=headers)
    assert r.status_code == 200, r.text
    amount: int = r.json()["price"]["amount"]
    return amount


def test_hq_sets_a_store_price_for_a_week_and_the_store_sees_it(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    sku = catalog.sku(base_price=1000)
    start = utcnow() - timedelta(minutes=1)
    body = {
        "price": 799,
        "store_id": str(store.id),
        "channel": "pos",
        "valid_from": start.isoformat(),
        "valid_to": (start + timedelta(days=7)).isoformat(),
        "reason": "周末促销",
    }
    r = client.post(prices_url(sku.id), json=body, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["price"] == {"amount": 799, "currency": "CNY"}
    assert (created["status"], created["channel"]) == ("active", "pos")
    pos = factory.api_key_headers(Channel.POS, store=store)
    assert price_of(client, sku.id, pos) == 799
    assert price_of(client, sku.id, admin) == 1000
    listed = client.get(prices_url(sku.id), headers=pos).json()["items"]
    assert [o["id"] for o in listed] == [created["id"]]


def test_the_window_must_end_after_it_starts(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    now = utcnow()
    body = {"price": 500, "valid_from": now.isoformat(), "valid_to": now.isoformat()}
    r = client.post(prices_url(sku.id), json=body, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "valid_to"
    past = {"price": 500, "valid_to": (now - timedelta(hours=1)).isoformat()}
    r = client.post(prices_url(sku.id), json=past, headers=admin)
    assert r.status_code == 422, "without valid_from the window starts now"
    naive = {"price": 500, "valid_from": "2026-01-01T00:00:00"}
    r = client.post(prices_url(sku.id), json=naive, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "valid_from"


def test_the_store_must_exist_be_a_store_and_the_channel_be_known(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    warehouse = factory.location(kind=LocationKind.WAREHOUSE)
    for store_id in (factory.new_id(), warehouse.id):
        r = client.post(
            prices_url(sku.id), json={"price": 1, "store_id": str(store_id)}, headers=admin
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "store_id"
    r = client.post(prices_url(sku.id), json={"price": 1, "channel": "fax"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "channel"
    r = client.post(prices_url(sku.id), json={"price": -1}, headers=admin)
    assert r.json()["errors"][0]["field"] == "price"


def test_a_store_bound_erp_key_prices_its_own_store_only(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    mine, theirs = factory.location(), factory.location()
    erp = factory.api_key_headers(Channel.ERP, store=mine)
    sku = catalog.sku()
    ok = client.post(prices_url(sku.id), json={"price": 900, "store_id": str(mine.id)}, headers=erp)
    assert ok.status_code == 201, ok.text
    other = client.post(
        prices_url(sku.id), json={"price": 900, "store_id": str(theirs.id)}, headers=erp
    )
    assert other.status_code == 403
    assert other.json()["type"].endswith("/store-out-of-scope")
    everywhere = client.post(prices_url(sku.id), json={"price": 900}, headers=erp)
    assert everywhere.status_code == 403
    assert everywhere.json()["type"].endswith("/store-out-of-scope")


def test_store_managers_cannot_set_prices(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    store = factory.location()
    manager = factory.staff_headers(Role.STORE_MANAGER, stores=[store])
    sku = catalog.sku()
    r = client.post(
        prices_url(sku.id), json={"price": 1, "store_id": str(store.id)}, headers=manager
    )
    assert r.status_code == 403
    assert r.json()["type"].endswith("/forbidden")


def test_ending_an_active_override_keeps_it_on_record_with_its_end(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku(base_price=1000)
    override = catalog.override(sku, 700, valid_from=utcnow() - timedelta(days=1))
    assert price_of(client, sku.id, admin) == 700
    r = client.delete(f"/api/v1/catalog/prices/{override.id}", headers=admin)
    assert r.status_code == 204, r.text
    assert price_of(client, sku.id, admin) == 1000
    listed = client.get(prices_url(sku.id), headers=admin).json()["items"]
    assert [(o["id"], o["status"]) for o in listed] == [(str(override.id), "ended")]
    assert listed[0]["valid_to"] is not None
    again = client.delete(f"/api/v1/catalog/prices/{override.id}", headers=admin)
    assert again.status_code == 409


def test_ending_an_override_that_has_not_started_withdraws_it(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    override = catalog.override(sku, 700, valid_from=utcnow() + timedelta(days=3))
    override_id = override.id
    r = client.delete(f"/api/v1/catalog/prices/{override_id}", headers=admin)
    assert r.status_code == 204
    session.expire_all()
    assert session.get(PriceOverride, override_id) is None
    assert client.delete(f"/api/v1/catalog/prices/{override_id}", headers=admin).status_code == 404


def test_only_callers_covering_the_store_may_end_its_prices(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    mine, theirs = factory.location(), factory.location()
    sku = catalog.sku()
    override = catalog.override(sku, 700, store=theirs)
    erp = factory.api_key_headers(Channel.ERP, store=mine)
    r = client.delete(f"/api/v1/catalog/prices/{override.id}", headers=erp)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/store-out-of-scope")


def test_a_store_bound_caller_lists_only_its_stores_and_chain_wide_overrides(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    mine, theirs = factory.location(), factory.location()
    sku = catalog.sku()
    everywhere = catalog.override(sku, 900)
    own = catalog.override(sku, 800, store=mine)
    catalog.override(sku, 700, store=theirs)
    clerk = factory.staff_headers(Role.STORE_STAFF, stores=[mine])
    listed = client.get(prices_url(sku.id), headers=clerk).json()["items"]
    assert [o["id"] for o in listed] == [str(everywhere.id), str(own.id)]
    r = client.get(prices_url(sku.id), params={"store_id": str(theirs.id)}, headers=clerk)
    assert r.status_code == 403


def test_the_base_price_is_changed_on_the_sku(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku(base_price=1000)
    r = client.patch(f"/api/v1/catalog/skus/{sku.id}", json={"base_price": 1200}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["base_price"] == {"amount": 1200, "currency": "CNY"}
    assert price_of(client, sku.id, admin) == 1200
    r = client.patch(f"/api/v1/catalog/skus/{sku.id}", json={"base_price": 1.5}, headers=admin)
    assert r.status_code == 422, "money is integer fen"


def test_moments_given_in_shanghai_time_are_answered_in_utc_as_listed(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    """Timestamps are returned in UTC (api-conventions): the created override and the price's
    `at` used to echo the caller's +08:00 while the list answered UTC for the same moments."""
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku(base_price=1000)
    body = {
        "price": 888,
        "valid_from": "2030-01-01T00:00:00+08:00",
        "valid_to": "2030-01-02T00:00:00+08:00",
    }
    r = client.post(prices_url(sku.id), json=body, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["valid_from"], created["valid_to"]) == (
        "2029-12-31T16:00:00Z",
        "2030-01-01T16:00:00Z",
    )
    listed = client.get(prices_url(sku.id), headers=admin).json()["items"]
    assert [(o["valid_from"], o["valid_to"]) for o in listed] == [
        (created["valid_from"], created["valid_to"])
    ]
    params = {"at": "2030-01-01T00:00:00+08:00"}
    r = client.get(f"/api/v1/catalog/skus/{sku.id}/price", params=params, headers=admin)
    assert (r.json()["price"]["amount"], r.json()["at"]) == (888, "2029-12-31T16:00:00Z")
