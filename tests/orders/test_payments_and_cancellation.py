"""Paying online: notifications applied once in any order, declines, cancellation with refunds,
unpaid orders expiring, and placing an order idempotently."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.orders.conftest import (
    NEARBY,
    Chain,
    collect_at_counter,
    forward_payment_notifications,
    ok,
    pay_by_wallet,
    place,
    quote,
    store_step,
)
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.providers import Providers
from zhongtai.orders.models import Order
from zhongtai.orders.unpaid_orders import expire_unpaid_orders


def _pickup_order(client: TestClient, chain: Chain, *quantities: int, **extra: Any) -> Any:
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(*quantities),
        },
    )
    return place(client, chain.app, q["id"], **extra)


def _events(session: Session, kind: str, order_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.type == kind, OutboxEvent.aggregate_id == order_id)
        )
        or 0
    )


def test_notifications_repeated_and_out_of_order_pay_the_order_exactly_once(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _pickup_order(client, chain, 1)
    payment = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/payments", json={"tender": "alipay"}, headers=chain.app
        ),
        201,
    )
    gateway: Any = providers.payments["sandbox"]
    gateway.customer_confirms(payment["provider_ref"])
    signed = gateway.signed_notifications(payment["provider_ref"])
    for note in [*reversed(signed), *signed]:
        answer = client.post(
            "/api/v1/payments/notifications/sandbox", content=note.body, headers=note.headers
        )
        assert answer.status_code == 204
    paid = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert paid["status"] == "paid" and paid["paid_amount"] == 1000
    assert _events(session, "order.paid", order["id"]) == 1
    assert _events(session, "payment.captured", order["id"]) == 1


def test_a_tampered_notification_is_refused_with_401(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _pickup_order(client, chain, 1)
    payment = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/payments", json={"tender": "alipay"}, headers=chain.app
        ),
        201,
    )
    gateway: Any = providers.payments["sandbox"]
    gateway.customer_confirms(payment["provider_ref"])
    note = gateway.signed_notifications(payment["provider_ref"])[-1]
    answer = client.post(
        "/api/v1/payments/notifications/sandbox",
        content=note.body.replace(b"1000", b"1001"),
        headers=note.headers,
    )
    assert answer.status_code == 401
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == "created"


def test_a_declined_card_leaves_the_order_unpaid_and_another_tender_may_pay(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    # 10.04 yuan: the sandbox declines amounts ending in 04 fen.
    order = _pickup_order(client, chain, 1)
    declined = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/payments",
            json={"tender": "bank_card", "amount": 4},
            headers=chain.app,
        ),
        201,
    )
    assert declined["status"] == "failed"
    card = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/payments",
            json={"tender": "bank_card"},
            headers=chain.app,
        ),
        201,
    )
    assert card["status"] == "captured" and card["amount"] == 1000
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == "paid"


def test_cancelling_a_paid_order_releases_its_stock_and_refunds_the_wallet(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _pickup_order(client, chain, 2)
    pay_by_wallet(client, providers, chain.app, order["id"])
    cancelled = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel",
            json={"reason": "customer changed their mind"},
            headers=chain.app,
        )
    )
    assert cancelled["status"] == "cancelled" and cancelled["refunded_amount"] == 2000
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0
    again = client.post(
        f"/api/v1/orders/{order['id']}/cancel", json={"reason": "twice"}, headers=chain.app
    )
    assert again.status_code == 200 and again.json()["refunded_amount"] == 2000


def test_an_order_handed_over_cannot_be_cancelled(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _pickup_order(client, chain, 1)
    pay_by_wallet(client, providers, chain.app, order["id"])
    for step in ("accept", "start-picking", "pack", "ready"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    collect_at_counter(client, chain, order)
    late = client.post(
        f"/api/v1/orders/{order['id']}/cancel", json={"reason": "too late"}, headers=chain.app
    )
    assert late.status_code == 409
    assert "completed is" in late.json()["detail"] or "completed" in late.json()["detail"]


def test_an_unpaid_order_expires_and_its_stock_comes_back(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _pickup_order(client, chain, 3)
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 3
    expired = expire_unpaid_orders(
        session, providers=providers.payments, now=utcnow() + timedelta(hours=1)
    )
    session.commit()
    assert expired == 1
    row = session.get(Order, uuid.UUID(order["id"]), populate_existing=True)
    assert row is not None and row.status.value == "cancelled"
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0


def _wallet_payment(client: TestClient, chain: Chain, order: Any) -> Any:
    """A WeChat Pay payment of the whole order, waiting for the customer to approve it."""
    return ok(
        client.post(
            f"/api/v1/orders/{order['id']}/payments",
            json={"tender": "wechat_pay"},
            headers=chain.app,
        ),
        201,
    )


def _cancel(client: TestClient, chain: Chain, order: Any) -> Any:
    return ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel", json={"reason": "left"}, headers=chain.app
        )
    )


def test_a_wallet_payment_approved_just_before_cancellation_is_refunded_once(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _pickup_order(client, chain, 1)
    payment = _wallet_payment(client, chain, order)
    # The customer approves; the provider's notification has not reached us yet.
    providers.payments["sandbox"].customer_confirms(payment["provider_ref"])  # type: ignore[attr-defined]
    _cancel(client, chain, order)
    forward_payment_notifications(client, providers, payment["provider_ref"])
    final = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (final["status"], final["paid_amount"], final["refunded_amount"]) == (
        "cancelled",
        1000,
        1000,
    )
    refunds = ok(client.get(f"/api/v1/orders/{order['id']}/refunds", headers=chain.app))
    assert [(r["amount"], r["reason"]) for r in refunds] == [(1000, "cancelled")]


def test_cancelling_releases_an_unapproved_wallet_payment_so_it_can_no_longer_be_paid(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _pickup_order(client, chain, 1)
    payment = _wallet_payment(client, chain, order)
    _cancel(client, chain, order)
    gateway: Any = providers.payments["sandbox"]
    assert gateway.status(payment["provider_ref"]).status == "voided"
    with pytest.raises(Conflict):
        gateway.customer_confirms(payment["provider_ref"])
    forward_payment_notifications(client, providers, payment["provider_ref"])
    taken = ok(client.get(f"/api/v1/orders/{order['id']}/payments", headers=chain.app))
    assert [p["status"] for p in taken] == ["voided"]
    final = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (final["paid_amount"], final["refunded_amount"]) == (0, 0)


def test_a_customer_switching_wallets_releases_the_unapproved_payment_and_pays_with_the_new(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _pickup_order(client, chain, 1)
    url = f"/api/v1/orders/{order['id']}/payments"
    first = ok(client.post(url, json={"tender": "wechat_pay"}, headers=chain.app), 201)
    second = ok(client.post(url, json={"tender": "alipay"}, headers=chain.app), 201)
    assert (second["status"], second["amount"]) == ("pending", 1000)
    gateway: Any = providers.payments["sandbox"]
    assert gateway.status(first["provider_ref"]).status == "voided"
    gateway.customer_confirms(second["provider_ref"])
    for ref in (first["provider_ref"], second["provider_ref"]):
        forward_payment_notifications(client, providers, ref)
    paid = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (paid["status"], paid["paid_amount"]) == ("paid", 1000)
    taken = ok(client.get(url, headers=chain.app))
    assert [(p["tender"], p["status"]) for p in taken] == [
        ("wechat_pay", "voided"),
        ("alipay", "captured"),
    ]


def test_placing_twice_by_quote_or_by_the_channels_order_id_answers_the_first_order(
    client: TestClient, chain: Chain, session: Session
) -> None:
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)},
    )
    first = place(client, chain.app, q["id"], channel_order_id="APP-000123")
    again = client.post(
        "/api/v1/orders",
        json={"quote_id": q["id"], "channel_order_id": "APP-000123"},
        headers=chain.app,
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    q2 = quote(
        client,
        chain.app,
        {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)},
    )
    same_channel_id = client.post(
        "/api/v1/orders",
        json={"quote_id": q2["id"], "channel_order_id": "APP-000123"},
        headers=chain.app,
    )
    assert same_channel_id.status_code == 200 and same_channel_id.json()["id"] == first["id"]
    assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_bad_checkout_input_names_the_field_and_holds_nothing(
    client: TestClient, chain: Chain
) -> None:
    cases = [
        ({"fulfillment_type": "delivery", "lines": chain.basket(1)}, "address"),
        ({"fulfillment_type": "in_store", "lines": chain.basket(1)}, "fulfillment_type"),
        (
            {
                "fulfillment_type": "pickup",
                "store_id": str(chain.store.id),
                "lines": [{"sku_id": str(chain.skus[0].id), "quantity": 0}],
            },
            "lines.0.quantity",
        ),
    ]
    for body, field in cases:
        answer = client.post("/api/v1/checkout/quotes", json=body, headers=chain.app)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == field
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0


def test_the_sandbox_customer_confirms_through_the_api_and_the_callback_pays_the_order(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _pickup_order(client, chain, 1)
    payment = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/payments", json={"tender": "alipay"}, headers=chain.app
        ),
        201,
    )
    assert payment["customer_action"]
    confirmed = client.post(
        f"/api/v1/sandbox/payments/{payment['provider_ref']}/confirm", headers=chain.app
    )
    assert confirmed.status_code == 204
    forward_payment_notifications(client, providers, payment["provider_ref"])
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == "paid"
    twice = client.post(
        f"/api/v1/sandbox/payments/{payment['provider_ref']}/confirm", headers=chain.app
    )
    assert twice.status_code == 409
