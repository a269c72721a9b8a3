"""The inventory API: store scope, clear 422s that move nothing, 409s naming the short SKU."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.inventory.conftest import StockFactory
from zhongtai.catalog.models import Sku
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.stores.models import Location

BASE = "/api/v1/inventory"


def _lines(*pairs: tuple[Sku, int]) -> list[dict[str, Any]]:
    return [{"sku_id": str(s.id), "quantity": q} for s, q in pairs]


def _balance(client: TestClient, headers: dict[str, str], store: Location, sku: Sku) -> Any:
    r = client.get(f"{BASE}/locations/{store.id}/balances?sku_id={sku.id}", headers=headers)
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    return item


def test_a_clerk_receives_goods_and_sees_on_hand_and_atp(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    clerk = stock.factory.staff_headers(Role.STORE_STAFF, [store])
    r = client.post(
        f"{BASE}/receipts",
        json={
            "location_id": str(store.id),
            "reference_type": "dc_delivery",
            "reference_id": "DN-1",
            "lines": [{"sku_id": str(sku.id), "quantity": 12, "lot": "L1"}],
        },
        headers=clerk,
    )
    assert r.status_code == 201, r.text
    assert r.json()["movements"][0]["balance"]["on_hand"] == 12
    item = _balance(client, clerk, store, sku)
    assert (item["on_hand"], item["reserved"], item["atp"]) == (12, 0, 12)


def test_bad_input_answers_422_naming_the_field_and_moves_nothing(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    admin = stock.factory.staff_headers(Role.HQ_ADMIN)
    unknown = str(stock.factory.new_id())
    cases = {
        "lines.0.quantity": {"location_id": str(store.id), "lines": _lines((sku, -1))},
        "lines.1.sku_id": {"location_id": str(store.id), "lines": _lines((sku, 1), (sku, 2))},
        "location_id": {"location_id": unknown, "lines": _lines((sku, 1))},
    }
    for field, body in cases.items():
        for path in ("receipts", "pos-sales", "reservations"):
            full = body | {"reference": f"bad-{field}"}
            r = client.post(f"{BASE}/{path}", json=full, headers=admin)
            assert r.status_code == 422, (path, field, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert field in {e["field"] for e in r.json()["errors"]}, (path, r.text)
    body = {
        "location_id": str(store.id),
        "reference": "x",
        "lines": [{"sku_id": unknown, "quantity": 1}],
    }
    for path in ("receipts", "pos-sales", "reservations"):
        r = client.post(f"{BASE}/{path}", json=body, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lines.0.sku_id", r.text
    item = _balance(client, admin, store, sku)
    assert (item["on_hand"], item["reserved"]) == (5, 0)
    r = client.get(f"{BASE}/movements?location_id={store.id}", headers=admin)
    assert len(r.json()["items"]) == 1


def test_an_app_reserves_a_basket_retries_safely_and_the_short_sku_is_named(
    client: TestClient, stock: StockFactory
) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 3)
    stock.receive(store, b, 1)
    app = stock.factory.api_key_headers(Channel.APP)
    body = {
        "reference": "checkout-77",
        "location_id": str(store.id),
        "lines": _lines((a, 2), (b, 1)),
    }
    first = client.post(f"{BASE}/reservations", json=body, headers=app)
    assert first.status_code == 201, first.text
    again = client.post(f"{BASE}/reservations", json=body, headers=app)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    short = client.post(
        f"{BASE}/reservations",
        json=body | {"reference": "checkout-78", "lines": _lines((a, 1), (b, 1))},
        headers=app,
    )
    assert short.status_code == 409
    problem = short.json()
    assert problem["type"].endswith("/insufficient-stock")
    assert (problem["sku_id"], problem["available"], problem["requested"]) == (str(b.id), 0, 1)
    assert _balance(client, app, store, a)["reserved"] == 2  # the short basket held nothing


def test_confirm_ships_and_release_frees_and_an_illegal_step_answers_409(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    pos = stock.factory.api_key_headers(Channel.POS, store=store)

    def hold(reference: str) -> str:
        body = {"reference": reference, "location_id": str(store.id), "lines": _lines((sku, 2))}
        r = client.post(f"{BASE}/reservations", json=body, headers=pos)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    shipped, cancelled = hold("o-1"), hold("o-2")
    assert (
        client.post(f"{BASE}/reservations/{shipped}/confirm", headers=pos).json()["status"]
        == "confirmed"
    )
    assert (
        client.post(f"{BASE}/reservations/{cancelled}/release", headers=pos).json()["status"]
        == "released"
    )
    item = _balance(client, pos, store, sku)
    assert (item["on_hand"], item["reserved"]) == (8, 0)
    illegal = client.post(f"{BASE}/reservations/{shipped}/release", headers=pos)
    assert illegal.status_code == 409 and illegal.json()["type"].endswith("/conflict")
    missing = client.post(f"{BASE}/reservations/{stock.factory.new_id()}/confirm", headers=pos)
    assert missing.status_code == 404


def test_a_till_sale_beyond_stock_is_accepted_and_listed_for_the_manager(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 1)
    pos = stock.factory.api_key_headers(Channel.POS, store=store)
    body = {"location_id": str(store.id), "reference": "R-100", "lines": _lines((sku, 2))}
    r = client.post(f"{BASE}/pos-sales", json=body, headers=pos)
    assert r.status_code == 201, r.text
    [posted] = r.json()["movements"]
    assert posted["balance"]["on_hand"] == -1 and posted["discrepancy_id"] is not None
    manager = stock.factory.staff_headers(Role.STORE_MANAGER, [store])
    listed = client.get(f"{BASE}/discrepancies?location_id={store.id}", headers=manager).json()
    assert [(d["sku_id"], d["on_hand_after"]) for d in listed["items"]] == [(str(sku.id), -1)]


def test_a_manager_adjusts_with_a_reason_and_is_recorded_as_approver(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 6)
    manager = stock.factory.staff_headers(Role.STORE_MANAGER, [store])
    body = {
        "location_id": str(store.id),
        "sku_id": str(sku.id),
        "quantity": -2,
        "kind": "write_off",
        "reason": "past sell-by date",
    }
    r = client.post(f"{BASE}/adjustments", json=body, headers=manager)
    assert r.status_code == 201, r.text
    ledger = client.get(
        f"{BASE}/movements?location_id={store.id}&kind=write_off", headers=manager
    ).json()["items"]
    assert [(m["quantity"], m["reason"]) for m in ledger] == [(-2, "past sell-by date")]
    assert ledger[0]["approver"].startswith("staff:")
    too_much = client.post(f"{BASE}/adjustments", json=body | {"quantity": -5}, headers=manager)
    assert too_much.status_code == 409 and too_much.json()["available"] == 4
    zero = client.post(
        f"{BASE}/adjustments", json=body | {"quantity": 0, "kind": "adjustment"}, headers=manager
    )
    assert zero.status_code == 422 and zero.json()["errors"][0]["field"] == "quantity"
    clerk = stock.factory.staff_headers(Role.STORE_STAFF, [store])
    assert client.post(f"{BASE}/adjustments", json=body, headers=clerk).status_code == 403
    hq = stock.factory.staff_headers(Role.HQ_ADMIN)
    audit = client.get(
        "/api/v1/audit", params={"action": "stock.adjusted", "store_id": str(store.id)}, headers=hq
    ).json()["items"]
    assert len(audit) == 1
    assert (audit[0]["before"]["on_hand"], audit[0]["after"]["on_hand"]) == (6, 4)
    assert audit[0]["after"]["reason"] == "past sell-by date"
    assert audit[0]["actor"] == ledger[0]["approver"]


def test_one_sku_across_locations_shows_only_the_callers_stores(
    client: TestClient, stock: StockFactory
) -> None:
    own, other, sku = stock.location(), stock.location(), stock.sku()
    stock.receive(own, sku, 4)
    stock.receive(other, sku, 9)
    clerk = stock.factory.staff_headers(Role.STORE_STAFF, [own])
    mine = client.get(f"{BASE}/skus/{sku.id}/balances", headers=clerk).json()["items"]
    assert [(x["location_id"], x["on_hand"]) for x in mine] == [(str(own.id), 4)]
    admin = stock.factory.staff_headers(Role.HQ_ADMIN)
    everywhere = client.get(f"{BASE}/skus/{sku.id}/balances?limit=1", headers=admin).json()
    assert len(everywhere["items"]) == 1 and everywhere["next_cursor"] is not None
    rest = client.get(
        f"{BASE}/skus/{sku.id}/balances?limit=1&cursor={everywhere['next_cursor']}", headers=admin
    ).json()
    assert {everywhere["items"][0]["location_id"], rest["items"][0]["location_id"]} == {
        str(own.id),
        str(other.id),
    }
    foreign = client.get(f"{BASE}/locations/{other.id}/balances", headers=clerk)
    assert foreign.status_code == 403 and foreign.json()["type"].endswith("/store-out-of-scope")


def test_safety_stock_set_by_a_manager_lowers_atp(client: TestClient, stock: StockFactory) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    manager = stock.factory.staff_headers(Role.STORE_MANAGER, [store])
    r = client.put(
        f"{BASE}/locations/{store.id}/skus/{sku.id}/levels",
        json={"safety_stock": 3, "low_stock_level": 2},
        headers=manager,
    )
    assert r.status_code == 200 and r.json()["atp"] == 7, r.text
