"""Buy online, pick up in store: checkout to code at the counter, through the API."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from tests.orders.conftest import (
    Chain,
    ok,
    pay_by_wallet,
    place,
    quote,
    store_step,
)
from zhongtai.core.auth.roles import Channel
from zhongtai.core.db import Database
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.relay import Relay


def _ready_pickup_order(client: TestClient, chain: Chain, providers: Providers) -> dict:
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(2, 1),
        },
    )
    order = place(client, chain.app, q["id"], contact_name="王女士", contact_phone="13812345678")
    pay_by_wallet(client, providers, chain.app, order["id"])
    for step in ("accept", "start-picking"):
        store_step(client, chain.clerk, order["id"], step)
    store_step(client, chain.clerk, order["id"], "pack", {"packages": 1})
    return store_step(client, chain.clerk, order["id"], "ready")


def test_pickup_order_goes_from_quote_to_code_at_the_counter_and_stock_ships_once(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(2, 1),
        },
    )
    assert q["store_id"] == str(chain.store.id)
    assert q["total"] == q["subtotal"] == 3000 and q["delivery_fee"] == 0
    assert [c["chosen"] for c in q["sourcing"]["candidates"]] == [True]
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 2

    order = place(client, chain.app, q["id"], contact_name="王女士", contact_phone="13812345678")
    assert order["status"] == "created"
    assert order["contact_phone_masked"] == "138****5678"
    pay_by_wallet(client, providers, chain.app, order["id"])
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == "paid"

    store_step(client, chain.clerk, order["id"], "accept")
    store_step(client, chain.clerk, order["id"], "start-picking")
    store_step(client, chain.clerk, order["id"], "pack", {"packages": 1})
    ready = store_step(client, chain.clerk, order["id"], "ready")
    assert ready["status"] == "ready_for_pickup"

    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    code = tracking["pickup"]["code"]
    assert len(code) == 6 and code.isdigit()
    assert [t["to_status"] for t in tracking["timeline"]] == [
        "created",
        "paid",
        "accepted",
        "picking",
        "packed",
        "ready_for_pickup",
    ]

    done = ok(
        client.post(
            "/api/v1/fulfillment/pickups",
            json={"order": order["number"], "code": code},
            headers=chain.clerk,
        )
    )
    assert done["status"] == "completed"
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert (balance.on_hand, balance.reserved) == (8, 0)

    again = client.post(
        "/api/v1/fulfillment/pickups",
        json={"order": order["number"], "code": code},
        headers=chain.clerk,
    )
    assert again.status_code == 409
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 8


def test_wrong_pickup_codes_are_refused_then_throttled_and_the_right_one_still_waits(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _ready_pickup_order(client, chain, providers)
    code = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))["pickup"][
        "code"
    ]
    wrong = "000000" if code != "000000" else "111111"
    answers = [
        client.post(
            "/api/v1/fulfillment/pickups",
            json={"order": order["number"], "code": wrong},
            headers=chain.clerk,
        ).status_code
        for _ in range(6)
    ]
    assert answers == [422] * 5 + [429]
    status = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"]
    assert status == "ready_for_pickup"


def test_a_clerk_of_another_store_cannot_hand_the_order_over(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _ready_pickup_order(client, chain, providers)
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    from zhongtai.core.auth.roles import Role

    elsewhere = chain.factory.staff_headers(Role.STORE_STAFF, [chain.factory.location()])
    answer = client.post(
        "/api/v1/fulfillment/pickups",
        json={"qr_payload": tracking["pickup"]["qr_payload"]},
        headers=elsewhere,
    )
    # Answered as if there were no such order: a clerk learns nothing of another store's.
    assert answer.status_code == 404
    assert "store_id" not in answer.json()
    by_qr = client.post(
        "/api/v1/fulfillment/pickups",
        json={"qr_payload": tracking["pickup"]["qr_payload"]},
        headers=chain.clerk,
    )
    assert ok(by_qr)["status"] == "completed"


def test_packing_before_picking_answers_409_naming_what_is_allowed(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "pickup", "store_id": str(chain.store.id), "lines": chain.basket(1)},
    )
    order = place(client, chain.app, q["id"])
    early = client.post(f"/api/v1/fulfillment/orders/{order['id']}/accept", headers=chain.clerk)
    assert early.status_code == 409
    problem = early.json()
    assert problem["type"].endswith("/illegal-order-step")
    assert "next it may become paid or cancelled" in problem["detail"]


def test_the_customer_follows_the_order_as_a_live_stream_of_its_own_events(
    client: TestClient, chain: Chain, providers: Providers, test_db: Database
) -> None:
    order = _ready_pickup_order(client, chain, providers)
    asyncio.run(Relay(test_db.writer, holder="order-stream-test").run_once())
    stream = client.get(
        f"/api/v1/orders/{order['id']}/events", params={"follow": "false"}, headers=chain.app
    )
    assert stream.status_code == 200
    kinds = [
        line.removeprefix("event: ")
        for line in stream.text.splitlines()
        if line.startswith("event: ")
    ]
    assert kinds[0] == "order.created"
    assert kinds[-1] == "fulfillment.ready_for_pickup"
    assert {"order.paid", "payment.captured", "order.packed"} <= set(kinds)
    assert not any(k.startswith("stock.") for k in kinds)
    elsewhere = chain.factory.api_key_headers(Channel.MARKETPLACE)
    denied = client.get(
        f"/api/v1/orders/{order['id']}/events", params={"follow": "false"}, headers=elsewhere
    )
    assert denied.status_code == 403
