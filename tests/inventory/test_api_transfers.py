"""Transfer and stocktake endpoints: who asks, approves, ships, counts and posts."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.inventory.conftest import StockFactory
from zhongtai.core.auth.roles import Role
from zhongtai.stores.models import LocationKind

BASE = "/api/v1/inventory"


def test_a_store_asks_the_dc_and_counts_what_arrives(
    client: TestClient, stock: StockFactory
) -> None:
    dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
    stock.receive(dc, sku, 50)
    manager = stock.factory.staff_headers(Role.STORE_MANAGER, [store])
    clerk = stock.factory.staff_headers(Role.STORE_STAFF, [store])
    admin = stock.factory.staff_headers(Role.HQ_ADMIN)
    body = {
        "from_location_id": str(dc.id),
        "to_location_id": str(store.id),
        "lines": [{"sku_id": str(sku.id), "quantity": 12}],
    }
    itself = client.post(
        f"{BASE}/transfers", json=body | {"to_location_id": str(dc.id)}, headers=admin
    )
    assert itself.status_code == 422 and itself.json()["errors"][0]["field"] == "to_location_id"
    r = client.post(f"{BASE}/transfers", json=body, headers=manager)
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    refused = client.post(f"{BASE}/transfers/{tid}/approve", headers=manager)
    assert refused.json()["type"].endswith("/store-out-of-scope")
    assert client.post(f"{BASE}/transfers/{tid}/approve", headers=admin).status_code == 200
    shipped = client.post(f"{BASE}/transfers/{tid}/ship", headers=admin)
    assert shipped.json()["status"] == "shipped", shipped.text
    count = {"lines": [{"sku_id": str(sku.id), "quantity": 11}]}
    arrived = client.post(f"{BASE}/transfers/{tid}/receive", json=count, headers=clerk)
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["lines"] == [
        {"sku_id": str(sku.id), "quantity": 12, "received_quantity": 11}
    ]
    mine = client.get(f"{BASE}/locations/{store.id}/balances", headers=clerk).json()["items"]
    assert [(x["on_hand"], x["in_transit"]) for x in mine] == [(11, 0)]
    again = client.post(f"{BASE}/transfers/{tid}/ship", headers=admin)
    assert again.status_code == 409


def test_a_clerk_counts_while_the_till_sells_and_the_manager_approves_the_variance(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    manager = stock.factory.staff_headers(Role.STORE_MANAGER, [store])
    clerk = stock.factory.staff_headers(Role.STORE_STAFF, [store])
    r = client.post(f"{BASE}/stocktakes", json={"location_id": str(store.id)}, headers=manager)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert client.post(f"{BASE}/stocktakes/{sid}/approve", headers=clerk).status_code == 403
    sheet = {"lines": [{"sku_id": str(sku.id), "quantity": 7}]}
    counted = client.put(f"{BASE}/stocktakes/{sid}/zones/A1", json=sheet, headers=clerk)
    assert counted.status_code == 200 and counted.json()["counts"][0]["on_hand_at_count"] == 10
    sale = {
        "location_id": str(store.id),
        "reference": "R-9",
        "lines": [{"sku_id": str(sku.id), "quantity": 1}],
    }
    assert client.post(f"{BASE}/pos-sales", json=sale, headers=clerk).status_code == 201
    approved = client.post(f"{BASE}/stocktakes/{sid}/approve", headers=manager)
    assert approved.status_code == 200, approved.text
    [variance] = approved.json()["movements"]
    assert (variance["quantity"], variance["balance"]["on_hand"]) == (-3, 6)
