"""Points over HTTP: earned at the POS, spent in the app, replays changing nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import Factory
from tests.members.conftest import new_phone
from zhongtai.core.auth.roles import Channel, Role


def _member(client: TestClient, headers: dict[str, str]) -> str:
    r = client.post(
        "/api/v1/members/identify", json={"kind": "phone", "value": new_phone()}, headers=headers
    )
    return str(r.json()["member"]["id"])


def _sale(source_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "source_type": "pos_sale",
        "source_id": source_id,
        "lines": [{"net_fen": 12_800}, {"net_fen": 7_200}],
        "tenders": [
            {"kind": "wechat_pay", "amount_fen": 15_000},
            {"kind": "coupon", "amount_fen": 5_000},
        ],
        **extra,
    }


def test_points_earned_in_a_pos_sale_are_spent_in_an_app_order(
    client: TestClient, factory: Factory
) -> None:
    store = factory.location()
    pos = factory.api_key_headers(Channel.POS, store=store)
    app = factory.api_key_headers(Channel.APP)
    member = _member(client, pos)
    points = f"/api/v1/members/{member}/points"

    earned = client.post(f"{points}/earn", json=_sale("SH-T1-0001"), headers=pos)
    assert earned.status_code == 201, earned.text
    entry = earned.json()["entry"]
    assert (entry["points"], entry["store_id"]) == (150, str(store.id))  # the POS's own store

    # The POS, back online, replays its queue: nothing changes, the first answer comes back.
    replay = client.post(f"{points}/earn", json=_sale("SH-T1-0001"), headers=pos)
    assert replay.status_code == 200 and replay.json() == {"replayed": True, "entry": entry}

    spent = client.post(
        f"{points}/redeem",
        json={"source_type": "order", "source_id": "APP-9", "points": 100},
        headers=app,
    )
    assert spent.status_code == 201, spent.text
    balance = client.get(points, headers=app).json()
    assert (balance["balance"], balance["debt"]) == (50, 0)
    assert len(balance["expiring"]) == 1

    too_much = client.post(
        f"{points}/redeem",
        json={"source_type": "order", "source_id": "APP-10", "points": 51},
        headers=app,
    )
    assert too_much.status_code == 409
    assert too_much.json()["type"].endswith("/insufficient-points")
    assert too_much.json()["available"] == 50


def test_a_return_at_the_pos_takes_back_points_and_leaves_a_debt_for_what_was_spent(
    client: TestClient, factory: Factory
) -> None:
    pos = factory.api_key_headers(Channel.POS)
    member = _member(client, pos)
    points = f"/api/v1/members/{member}/points"
    client.post(f"{points}/earn", json=_sale("S-77"), headers=pos)
    client.post(
        f"{points}/redeem",
        json={"source_type": "pos_sale", "source_id": "S-78", "points": 120},
        headers=pos,
    )
    body = {
        "return_id": "RET-77",
        "earned_by": {"source_type": "pos_sale", "source_id": "S-77"},
        "returned_fen": 20_000,
    }
    r = client.post(f"{points}/reverse", json=body, headers=pos)
    assert r.status_code == 201, r.text
    assert (r.json()["entry"]["points"], r.json()["entry"]["debt_change"]) == (-30, 120)
    assert client.get(points, headers=pos).json()["debt"] == 120


def test_the_history_pages_through_every_entry(client: TestClient, factory: Factory) -> None:
    pos = factory.api_key_headers(Channel.POS)
    member = _member(client, pos)
    points = f"/api/v1/members/{member}/points"
    for i in range(3):
        client.post(f"{points}/earn", json=_sale(f"H-{i}"), headers=pos)
    first = client.get(f"{points}/entries?limit=2", headers=pos).json()
    rest = client.get(f"{points}/entries?limit=2&cursor={first['next_cursor']}", headers=pos).json()
    sources = [e["source_id"] for e in first["items"] + rest["items"]]
    assert sources == ["H-0", "H-1", "H-2"] and rest["next_cursor"] is None


def test_hq_adjusts_with_a_reason_and_a_touchpoint_cannot(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    pos = factory.api_key_headers(Channel.POS)
    member = _member(client, hq)
    body = {"reference": "CS-1", "points": 500, "reason": "compensation for a spoiled delivery"}
    url = f"/api/v1/members/{member}/points/adjust"
    assert client.post(url, json=body, headers=hq).status_code == 201
    assert client.post(url, json=body, headers=pos).status_code == 403
    missing = client.post(url, json={"reference": "CS-2", "points": 5}, headers=hq)
    assert missing.status_code == 422 and [e["field"] for e in missing.json()["errors"]] == [
        "reason"
    ]


def test_a_pos_cannot_book_points_for_another_store(client: TestClient, factory: Factory) -> None:
    pos = factory.api_key_headers(Channel.POS)
    other = factory.location()
    member = _member(client, pos)
    r = client.post(
        f"/api/v1/members/{member}/points/earn",
        json=_sale("S-X", store_id=str(other.id)),
        headers=pos,
    )
    assert r.status_code == 403
    assert r.json()["type"].endswith("/store-out-of-scope")
