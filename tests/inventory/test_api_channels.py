"""The channel endpoints: allocation rules, ATP per channel, and stores for an address."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.inventory.conftest import StockFactory
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability

BASE = "/api/v1/inventory"


def test_hq_limits_the_app_and_the_app_sees_and_reserves_only_its_share(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    admin = stock.factory.staff_headers(Role.HQ_ADMIN)
    rule = {"channel": "app", "share_percent": 80, "keep_units": 2}
    assert client.put(f"{BASE}/allocations", json=rule, headers=admin).status_code == 200
    app = stock.factory.api_key_headers(Channel.APP)
    atp = client.get(f"{BASE}/locations/{store.id}/channel-atp?sku_id={sku.id}", headers=app)
    assert atp.json() == [{"sku_id": str(sku.id), "atp": 10, "channel_atp": 8}]
    body = {
        "reference": "app-basket",
        "location_id": str(store.id),
        "lines": [{"sku_id": str(sku.id), "quantity": 9}],
        "channel": "mini_program",  # a key cannot speak for another channel
    }
    short = client.post(f"{BASE}/reservations", json=body, headers=app)
    assert short.status_code == 409 and short.json()["available"] == 8
    listed = client.get(f"{BASE}/allocations?channel=app", headers=app).json()
    assert [(r["share_percent"], r["keep_units"]) for r in listed] == [(80, 2)]


def test_a_manager_sets_rules_for_her_store_but_not_for_the_chain(
    client: TestClient, stock: StockFactory
) -> None:
    store, other = stock.location(), stock.location()
    manager = stock.factory.staff_headers(Role.STORE_MANAGER, [store])
    own = {"channel": "app", "location_id": str(store.id), "keep_units": 3}
    r = client.put(f"{BASE}/allocations", json=own, headers=manager)
    assert r.status_code == 200, r.text
    chain = client.put(f"{BASE}/allocations", json={"channel": "app"}, headers=manager)
    assert chain.status_code == 403
    foreign = client.put(
        f"{BASE}/allocations", json=own | {"location_id": str(other.id)}, headers=manager
    )
    assert foreign.json()["type"].endswith("/store-out-of-scope")
    bad = client.put(f"{BASE}/allocations", json=own | {"share_percent": 120}, headers=manager)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "share_percent"
    gone = client.delete(f"{BASE}/allocations/{r.json()['id']}", headers=manager)
    assert gone.status_code == 204


def test_an_address_query_lists_the_stores_with_the_whole_basket(
    client: TestClient, stock: StockFactory
) -> None:
    sku = stock.sku()
    store = stock.location(latitude=31.2350, longitude=121.4737)
    stores.set_capability(stock.session, store.id, Capability.DELIVERY, delivery_radius_m=3000)
    stock.session.commit()
    stock.receive(store, sku, 3)
    app = stock.factory.api_key_headers(Channel.MINI_PROGRAM)
    url = f"{BASE}/availability?latitude=31.2304&longitude=121.4737"
    found = client.get(f"{url}&item={sku.id}:3", headers=app).json()
    assert [(o["location_id"], o["delivers"], o["pickup"]) for o in found] == [
        (str(store.id), True, False)
    ]
    assert client.get(f"{url}&item={sku.id}:4", headers=app).json() == []
    bad = client.get(f"{url}&item={sku.id}", headers=app)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "item.0"
