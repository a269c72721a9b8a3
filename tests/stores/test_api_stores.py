"""Stores over HTTP: HQ manages them, store staff see only their own, managers set hours."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import Factory
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.stores.models import Location

STORES = "/api/v1/stores"
NEW_STORE: dict[str, Any] = {
    "code": "SH100",
    "name": "徐家汇店",
    "kind": "store",
    "region": "徐汇",
    "city": "上海",
    "address": "虹桥路 1 号",
    "latitude": 31.1955,
    "longitude": 121.4375,
    "timezone": "Asia/Shanghai",
}
WEEKDAYS_9_TO_21 = {
    "spans": [{"weekday": d, "opens_at": "09:00", "closes_at": "21:00"} for d in range(7)]
}


def fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def test_hq_creates_a_store_and_reads_it_back(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(STORES, json=NEW_STORE, headers=hq)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["code"] == "SH100"
    assert created["status"] == "active"
    got = client.get(f"{STORES}/{created['id']}", headers=hq)
    assert got.status_code == 200
    body = got.json()
    assert body["timezone"] == "Asia/Shanghai"
    assert body["hours"] == [] and body["capabilities"] == []
    assert body["open_now"] is False and body["next_opening"] is None


def test_an_invalid_time_zone_is_a_422_naming_timezone(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(STORES, json={**NEW_STORE, "timezone": "Shanghai"}, headers=hq)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert fields(r) == ["timezone"]
    assert "IANA" in r.json()["detail"]


def test_out_of_range_coordinates_are_a_422_naming_the_field(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(STORES, json={**NEW_STORE, "latitude": 123.0}, headers=hq)
    assert r.status_code == 422
    assert fields(r) == ["latitude"]


def test_a_duplicate_code_is_a_409(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    assert client.post(STORES, json=NEW_STORE, headers=hq).status_code == 201
    again = client.post(STORES, json={**NEW_STORE, "name": "另一家"}, headers=hq)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/already-exists")


def test_store_staff_cannot_create_stores(client: TestClient, factory: Factory) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    r = client.post(STORES, json=NEW_STORE, headers=clerk)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/forbidden")


def test_a_clerk_lists_only_her_own_store(client: TestClient, factory: Factory) -> None:
    mine, other = factory.location(region="测试区"), factory.location(region="测试区")
    clerk = factory.staff_headers(Role.STORE_STAFF, [mine])
    hq = factory.staff_headers(Role.HQ_ADMIN)
    seen = client.get(STORES, params={"region": "测试区"}, headers=clerk).json()["items"]
    assert [s["id"] for s in seen] == [str(mine.id)]
    all_seen = client.get(STORES, params={"region": "测试区"}, headers=hq).json()["items"]
    assert {s["id"] for s in all_seen} == {str(mine.id), str(other.id)}


def test_a_clerk_reading_another_store_gets_403_store_out_of_scope(
    client: TestClient, factory: Factory
) -> None:
    mine, other = factory.location(), factory.location()
    clerk = factory.staff_headers(Role.STORE_STAFF, [mine])
    assert client.get(f"{STORES}/{mine.id}", headers=clerk).status_code == 200
    r = client.get(f"{STORES}/{other.id}", headers=clerk)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/store-out-of-scope")


def test_a_pos_key_sees_its_store_and_an_app_key_sees_all(
    client: TestClient, factory: Factory
) -> None:
    mine, other = factory.location(region="钥匙区"), factory.location(region="钥匙区")
    pos = factory.api_key_headers(Channel.POS, store=mine)
    app = factory.api_key_headers(Channel.APP)
    pos_seen = client.get(STORES, params={"region": "钥匙区"}, headers=pos).json()["items"]
    app_seen = client.get(STORES, params={"region": "钥匙区"}, headers=app).json()["items"]
    assert [s["id"] for s in pos_seen] == [str(mine.id)]
    assert {s["id"] for s in app_seen} == {str(mine.id), str(other.id)}
    assert client.get(f"{STORES}/{other.id}", headers=app).status_code == 200


def test_listing_filters_by_kind_and_capability(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location(region="筛选区")
    factory.location(region="筛选区")
    r = client.put(
        f"{STORES}/{store.id}/capabilities/delivery", json={"delivery_radius_m": 3000}, headers=hq
    )
    assert r.status_code == 200, r.text
    delivering = client.get(
        STORES, params={"region": "筛选区", "capability": "delivery"}, headers=hq
    ).json()["items"]
    assert [s["id"] for s in delivering] == [str(store.id)]
    assert delivering[0]["capabilities"] == [
        {
            "capability": "delivery",
            "delivery_radius_m": 3000,
            "services": [],
            "paused_until": None,
            "pause_reason": None,
            "paused": False,
        }
    ]
    dcs = client.get(STORES, params={"region": "筛选区", "kind": "dc"}, headers=hq).json()
    assert dcs["items"] == []


def test_a_manager_sets_hours_for_her_store_but_not_another(
    client: TestClient, factory: Factory
) -> None:
    mine, other = factory.location(), factory.location()
    manager = factory.staff_headers(Role.STORE_MANAGER, [mine])
    r = client.put(f"{STORES}/{mine.id}/hours", json=WEEKDAYS_9_TO_21, headers=manager)
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "Asia/Shanghai"
    assert r.json()["spans"][0] == {
        "weekday": 0,
        "opens_at": "09:00",
        "closes_at": "21:00",
        "overnight": False,
    }
    refused = client.put(f"{STORES}/{other.id}/hours", json=WEEKDAYS_9_TO_21, headers=manager)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/store-out-of-scope")


def test_a_clerk_cannot_set_hours(client: TestClient, factory: Factory) -> None:
    mine = factory.location()
    clerk = factory.staff_headers(Role.STORE_STAFF, [mine])
    r = client.put(f"{STORES}/{mine.id}/hours", json=WEEKDAYS_9_TO_21, headers=clerk)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/forbidden")


def test_hours_must_be_hh_mm_and_must_not_overlap(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    bad_time = {"spans": [{"weekday": 0, "opens_at": "9am", "closes_at": "21:00"}]}
    r = client.put(f"{STORES}/{store.id}/hours", json=bad_time, headers=hq)
    assert r.status_code == 422
    assert fields(r) == ["spans.0.opens_at"]
    assert "HH:MM" in r.json()["detail"]
    overlap = {
        "spans": [
            {"weekday": 4, "opens_at": "22:00", "closes_at": "02:00"},
            {"weekday": 5, "opens_at": "01:00", "closes_at": "09:00"},
        ]
    }
    r = client.put(f"{STORES}/{store.id}/hours", json=overlap, headers=hq)
    assert r.status_code == 422
    assert fields(r) == ["spans"]


def test_the_detail_shows_local_hours_exceptions_and_open_now(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    always = {
        "spans": [{"weekday": d, "opens_at": "00:00", "closes_at": "00:00"} for d in range(7)]
    }
    assert client.put(f"{STORES}/{store.id}/hours", json=always, headers=hq).status_code == 200
    holiday = {"on_date": "2999-01-01", "closed": True, "note": "元旦"}
    r = client.post(f"{STORES}/{store.id}/exceptions", json=holiday, headers=hq)
    assert r.status_code == 201, r.text
    body = client.get(f"{STORES}/{store.id}", headers=hq).json()
    assert body["open_now"] is True
    assert body["hours"][0]["overnight"] is True
    assert body["upcoming_exceptions"] == [
        {
            "id": r.json()["id"],
            "on_date": "2999-01-01",
            "closed": True,
            "opens_at": None,
            "closes_at": None,
            "note": "元旦",
        }
    ]


def test_open_at_a_moment_answers_in_store_local_time(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    client.put(f"{STORES}/{store.id}/hours", json=WEEKDAYS_9_TO_21, headers=hq)
    special = {"on_date": "2025-06-07", "opens_at": "12:00", "closes_at": "15:00"}
    assert (
        client.post(f"{STORES}/{store.id}/exceptions", json=special, headers=hq).status_code == 201
    )
    late_friday = client.get(
        f"{STORES}/{store.id}/open", params={"at": "2025-06-06T22:00:00+08:00"}, headers=hq
    ).json()
    assert late_friday["open"] is False
    assert late_friday["at"] == "2025-06-06T22:00:00+08:00"
    assert late_friday["next_opening"] == "2025-06-07T12:00:00+08:00"
    in_utc = client.get(
        f"{STORES}/{store.id}/open", params={"at": "2025-06-07T05:00:00Z"}, headers=hq
    ).json()
    assert in_utc["open"] is True and in_utc["at"] == "2025-06-07T13:00:00+08:00"
    naive = client.get(
        f"{STORES}/{store.id}/open", params={"at": "2025-06-07T13:00:00"}, headers=hq
    )
    assert naive.status_code == 422
    assert fields(naive) == ["at"]


def test_exceptions_are_one_per_date_and_can_be_removed(
    client: TestClient, factory: Factory
) -> None:
    store = factory.location()
    manager = factory.staff_headers(Role.STORE_MANAGER, [store])
    url = f"{STORES}/{store.id}/exceptions"
    stocktake = {"on_date": "2999-03-01", "closed": True, "note": "盘点"}
    assert client.post(url, json=stocktake, headers=manager).status_code == 201
    assert client.post(url, json=stocktake, headers=manager).status_code == 409
    half = {"on_date": "2999-03-02", "opens_at": "10:00"}
    r = client.post(url, json=half, headers=manager)
    assert r.status_code == 422 and fields(r) == ["closes_at"]
    assert client.delete(f"{url}/2999-03-01", headers=manager).status_code == 204
    assert client.delete(f"{url}/2999-03-01", headers=manager).status_code == 404


def test_capabilities_are_validated_and_removable(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store: Location = factory.location()
    url = f"{STORES}/{store.id}/capabilities"
    no_radius = client.put(f"{url}/delivery", json={}, headers=hq)
    assert no_radius.status_code == 422 and fields(no_radius) == ["delivery_radius_m"]
    services = {"services": ["fish_cleaning", "alterations"]}
    r = client.put(f"{url}/in_store_services", json=services, headers=hq)
    assert r.status_code == 200
    assert r.json()["services"] == ["fish_cleaning", "alterations"]
    unknown = client.put(f"{url}/teleport", json={}, headers=hq)
    assert unknown.status_code == 422
    assert client.delete(f"{url}/in_store_services", headers=hq).status_code == 204
    assert client.get(f"{STORES}/{store.id}", headers=hq).json()["capabilities"] == []


def test_hq_patches_a_store_and_a_taken_code_is_a_409(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store, other = factory.location(), factory.location()
    r = client.patch(
        f"{STORES}/{store.id}", json={"name": "新名字", "status": "closed"}, headers=hq
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["status"]) == ("新名字", "closed")
    taken = client.patch(f"{STORES}/{store.id}", json={"code": other.code}, headers=hq)
    assert taken.status_code == 409
    null = client.patch(f"{STORES}/{store.id}", json={"region": None}, headers=hq)
    assert null.status_code == 422 and fields(null) == ["region"]


def test_an_unknown_store_is_a_404_for_hq(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    r = client.get(f"{STORES}/{Factory.new_id()}", headers=hq)
    assert r.status_code == 404
    assert r.json()["type"].endswith("/not-found")
