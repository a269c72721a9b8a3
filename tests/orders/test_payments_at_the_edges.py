"""Paying for orders at the edges: money captured for an order that ends unpaid comes back, a
payment that arrives after the order's stock hold ended never makes it paid, and a notification
whose money does not match the payment it names pays nothing."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.orders.conftest import Chain, forward_payment_notifications, ok, place, quote
from tests.orders.test_order_concurrency import _checkout, _store
from tests.races import all_at_once, race_database
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.integrations.providers import Providers, provider_secret
from zhongtai.integrations.signed_callbacks import sign_callback
from zhongtai.inventory.service import expire_reservations
from zhongtai.orders import payment_notifications, payments, unpaid_orders
from zhongtai.orders.kinds import OrderStatus, TenderType
from zhongtai.orders.models import Order, Payment
from zhongtai.orders.unpaid_orders import expire_unpaid_orders

NOTIFY = "/api/v1/payments/notifications/sandbox"


def _pickup_order(client: TestClient, chain: Chain, quantity: int = 1) -> Any:
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(quantity),
        },
    )
    return place(client, chain.app, q["id"])


def _pay(client: TestClient, chain: Chain, order_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/orders/{order_id}/payments", json=body, headers=chain.app)


def _order(client: TestClient, chain: Chain, order_id: str) -> Any:
    return ok(client.get(f"/api/v1/orders/{order_id}", headers=chain.app))


def _refunds(client: TestClient, chain: Chain, order_id: str) -> list[tuple[int, str]]:
    rows = ok(client.get(f"/api/v1/orders/{order_id}/refunds", headers=chain.app))
    return [(r["amount"], r["reason"]) for r in rows]


def _gateway(providers: Providers) -> Any:
    return providers.payments["sandbox"]


def _resigned(settings: Settings, body: bytes, **changes: Any) -> tuple[bytes, dict[str, str]]:
    """The provider's notification with ``changes``, signed now with the provider's secret (what
    a provider with a bug, or one confused about which payment it pays, would send)."""
    payload = {**json.loads(body), **changes}
    signed = sign_callback(
        provider_secret(settings, "sandbox"),
        "http://testserver" + NOTIFY,
        json.dumps(payload).encode(),
        now=int(time.time()),
    )
    return signed.body, signed.headers


# --- money captured for an order that ends unpaid -------------------------------------------


def test_a_part_payment_captured_before_the_order_expired_unpaid_is_refunded(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _pickup_order(client, chain)
    card = ok(_pay(client, chain, order["id"], tender="bank_card", amount=400), 201)
    assert card["status"] == "captured"
    assert _order(client, chain, order["id"])["status"] == "created"  # 600 fen still due

    assert expire_unpaid_orders(
        session, providers=providers.payments, now=utcnow() + timedelta(hours=1)
    )
    session.commit()

    expired = _order(client, chain, order["id"])
    assert (expired["status"], expired["refunded_amount"]) == ("cancelled", 400)
    assert _refunds(client, chain, order["id"]) == [(400, "cancelled")]
    assert _gateway(providers).status(card["provider_ref"]).refunded_fen == 400
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0


def test_a_customer_cancelling_a_part_paid_order_gets_the_part_back(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _pickup_order(client, chain)
    card = ok(_pay(client, chain, order["id"], tender="bank_card", amount=300), 201)
    cancelled = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel", json={"reason": "left"}, headers=chain.app
        )
    )
    assert (cancelled["status"], cancelled["refunded_amount"]) == ("cancelled", 300)
    assert _gateway(providers).status(card["provider_ref"]).refunded_fen == 300


# --- payments after the order's stock hold ended --------------------------------------------


def test_a_wallet_capture_notified_after_the_stock_hold_expired_refunds_and_never_pays_the_order(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _pickup_order(client, chain, 2)
    wallet = ok(_pay(client, chain, order["id"], tender="wechat_pay"), 201)
    # The reservation sweeper runs before the unpaid-order sweeper: the two units are for sale.
    assert expire_reservations(session, utcnow() + timedelta(hours=1)) == 1
    session.commit()
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0

    _gateway(providers).customer_confirms(wallet["provider_ref"])
    assert set(forward_payment_notifications(client, providers, wallet["provider_ref"])) == {204}

    late = _order(client, chain, order["id"])
    assert late["status"] == "cancelled"
    assert _refunds(client, chain, order["id"]) == [(2000, "cancelled")]
    assert _gateway(providers).status(wallet["provider_ref"]).refunded_fen == 2000
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0


def test_a_card_payment_for_an_order_past_its_payment_deadline_is_refused_and_charges_nothing(
    client: TestClient, chain: Chain, session: Session
) -> None:
    order = _pickup_order(client, chain)
    session.execute(
        update(Order)
        .where(Order.id == uuid.UUID(order["id"]))
        .values(payment_due_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()

    late = _pay(client, chain, order["id"], tender="bank_card")

    assert late.status_code == 409, late.text
    assert _order(client, chain, order["id"])["status"] == "created"
    taken = select(Payment).where(Payment.order_id == uuid.UUID(order["id"]))
    assert session.scalars(taken).all() == []


def test_a_payment_with_an_unknown_provider_answers_422_naming_the_provider_field(
    client: TestClient, chain: Chain, session: Session
) -> None:
    order = _pickup_order(client, chain)

    answer = _pay(client, chain, order["id"], tender="alipay", provider="no-such-gateway")

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "provider"
    taken = select(Payment).where(Payment.order_id == uuid.UUID(order["id"]))
    assert session.scalars(taken).all() == []


# --- notifications whose money does not match the payment ---------------------------------


def test_a_capture_notified_for_another_amount_or_currency_pays_nothing_and_names_the_field(
    client: TestClient, chain: Chain, providers: Providers, settings: Settings
) -> None:
    order = _pickup_order(client, chain)
    wallet = ok(_pay(client, chain, order["id"], tender="alipay"), 201)
    _gateway(providers).customer_confirms(wallet["provider_ref"])
    genuine = _gateway(providers).signed_notifications(wallet["provider_ref"])[-1]
    other_order = str(uuid.uuid4())
    wrong = [
        ({"captured_fen": 1, "amount_fen": 1}, "captured_fen"),
        ({"currency": "USD"}, "currency"),
        ({"order_id": other_order}, "order_id"),
    ]
    for changes, field in wrong:
        body, headers = _resigned(settings, genuine.body, **changes)
        answer = client.post(NOTIFY, content=body, headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == field
        unpaid = _order(client, chain, order["id"])
        assert (unpaid["status"], unpaid["paid_amount"]) == ("created", 0)

    # The genuine notification (same sequence) still pays the order: nothing was spent by those.
    answer = client.post(NOTIFY, content=genuine.body, headers=genuine.headers)
    assert answer.status_code == 204
    paid = _order(client, chain, order["id"])
    assert (paid["status"], paid["paid_amount"]) == ("paid", 1000)


# --- on PostgreSQL: a notification and a cancellation of the same order at once -------------


@pytest.fixture(scope="module")
def race_db() -> Iterator[Database]:
    with race_database("zt_payment_review", pool_size=4) as database:
        yield database


def _side_by_side(**steps: Callable[[], None]) -> dict[str, BaseException]:
    """Run each step on a thread of that name; what each raised, by name."""
    raised: dict[str, BaseException] = {}

    def run(name: str, step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as error:  # handed to the test to assert on
            raised[name] = error

    threads = [threading.Thread(target=run, args=item, name=item[0]) for item in steps.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return raised


@pytest.mark.postgres_only
def test_a_capture_notified_while_the_order_is_cancelled_neither_deadlocks_nor_refunds_twice(
    race_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_id, sku_id = _store(race_db, on_hand=5)
    order_id = _checkout(race_db, store_id, sku_id)
    gateway = SandboxPaymentGateway("review-gateway", notify=False)
    try:
        with race_db.writer() as s, s.begin():
            card = payments.start_payment(
                s,
                order_id,
                tender=TenderType.BANK_CARD,
                provider=gateway,
                notify_url="http://127.0.0.1:9/notify",
                amount=400,
            ).payment
            ref = card.provider_ref
        assert ref is not None
        captured = gateway.signed_notifications(ref)[0]

        # The worst interleaving, made certain: the notification has done what it does before
        # reading the order, then the cancellation locks the order, then both go on.
        notification_started, order_locked = threading.Event(), threading.Event()
        real_get_order = payments.get_order

        def get_order(session: Session, order_id: uuid.UUID, *, for_update: bool = False) -> Any:
            if threading.current_thread().name == "notification":
                notification_started.set()
                order_locked.wait(timeout=3)  # in vain when the notification holds the order
                return real_get_order(session, order_id, for_update=for_update)
            notification_started.wait(timeout=5)
            order = real_get_order(session, order_id, for_update=for_update)
            order_locked.set()
            return order

        monkeypatch.setattr(payments, "get_order", get_order)

        def notify() -> None:
            with race_db.writer() as s, s.begin():
                payment_notifications.apply_notification(
                    s, gateway, captured.headers, captured.body
                )

        def cancel() -> None:
            with race_db.writer() as s, s.begin():
                payments.cancel_order(s, order_id, reason="left", providers={"sandbox": gateway})

        assert _side_by_side(notification=notify, cancellation=cancel) == {}
        assert gateway.status(ref).refunded_fen == 400
    finally:
        gateway.close()
    with race_db.reader() as s:
        order = s.get(Order, order_id)
        assert order is not None and order.status is OrderStatus.CANCELLED
        assert (order.paid_amount, order.refunded_amount) == (400, 400)


def _sweeper_and_capture_at_once(
    race_db: Database, gateway: SandboxPaymentGateway, order_id: uuid.UUID
) -> tuple[OrderStatus, int, int]:
    """A wallet payment's capture notification and the sweeper expiring its order, at once:
    the order's (status, paid, refunded) after both."""
    with race_db.writer() as s, s.begin():
        ref = payments.start_payment(
            s,
            order_id,
            tender=TenderType.WECHAT_PAY,
            provider=gateway,
            notify_url="http://127.0.0.1:9/notify",
        ).payment.provider_ref
    assert ref is not None
    gateway.customer_confirms(ref)
    captured = gateway.signed_notifications(ref)[-1]

    def sweep() -> None:
        with race_db.writer() as s, s.begin():
            unpaid_orders.expire_unpaid_orders(
                s, providers={"sandbox": gateway}, now=utcnow() + timedelta(hours=1)
            )

    def notify() -> None:
        with race_db.writer() as s, s.begin():
            payment_notifications.apply_notification(s, gateway, captured.headers, captured.body)

    all_at_once(2, lambda i: (sweep, notify)[i]())
    with race_db.reader() as s:
        order = s.get(Order, order_id)
        assert order is not None
        assert gateway.status(ref).refunded_fen == order.refunded_amount
        return order.status, order.paid_amount, order.refunded_amount


@pytest.mark.postgres_only
def test_the_unpaid_sweeper_and_a_capture_arriving_together_leave_the_order_paid_or_refunded(
    race_db: Database,
) -> None:
    store_id, sku_id = _store(race_db, on_hand=10)
    with SandboxPaymentGateway("review-gateway", notify=False) as gateway:
        for _ in range(6):
            order_id = _checkout(race_db, store_id, sku_id)
            assert _sweeper_and_capture_at_once(race_db, gateway, order_id) in {
                (OrderStatus.PAID, 1000, 0),  # the money came first: the sweeper passed it over
                (OrderStatus.CANCELLED, 1000, 1000),  # cancelled first: the capture went back
            }


# --- a step retried after its transaction was lost ------------------------------------------


def test_a_payment_refused_for_a_provider_outage_goes_through_once_when_retried(
    client: TestClient, chain: Chain
) -> None:
    order = _pickup_order(client, chain)
    # The sandbox is unavailable once for an amount ending in 08 fen, until that payment's id
    # is asked again: the retry must be the same payment to the provider.
    assert _pay(client, chain, order["id"], tender="bank_card", amount=308).status_code == 503
    card = ok(_pay(client, chain, order["id"], tender="bank_card", amount=308), 201)
    assert card["status"] == "captured"
    taken = ok(client.get(f"/api/v1/orders/{order['id']}/payments", headers=chain.app))
    assert [(p["amount"], p["status"]) for p in taken] == [(308, "captured")]


def test_a_card_charge_whose_commit_was_lost_is_not_charged_again_when_retried(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order_id = uuid.UUID(_pickup_order(client, chain)["id"])

    def charge() -> str | None:
        started = payments.start_payment(
            session,
            order_id,
            tender=TenderType.BANK_CARD,
            provider=_gateway(providers),
            notify_url="http://testserver" + NOTIFY,
        )
        return started.payment.provider_ref

    charged = charge()
    session.rollback()  # the provider charged the card; the commit that would record it failed
    assert charge() == charged  # the provider answered with its first charge
    session.commit()
    paid = _order(client, chain, str(order_id))
    assert (paid["status"], paid["paid_amount"]) == ("paid", 1000)


def test_a_refund_whose_commit_was_lost_is_not_refunded_again_when_retried(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _pickup_order(client, chain)
    card = ok(_pay(client, chain, order["id"], tender="bank_card"), 201)

    def cancel() -> None:
        payments.cancel_order(
            session, uuid.UUID(order["id"]), reason="left", providers=providers.payments
        )

    cancel()
    session.rollback()  # the provider refunded; the commit that would record it failed
    cancel()
    session.commit()
    assert _gateway(providers).status(card["provider_ref"]).refunded_fen == 1000
    assert _refunds(client, chain, order["id"]) == [(1000, "cancelled")]
    assert _order(client, chain, order["id"])["refunded_amount"] == 1000
