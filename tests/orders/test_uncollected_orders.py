"""Orders left at the counter: a pickup not collected within the counter's hold is cancelled and
refunded, its goods back on sale; a try-on booking holds its goods from the booking on, and is
cancelled when the customer did not come (or the store never made it ready) within its hold.
Until then the stock stays held, however long the counter waits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.fulfillment.couriers_at_work import moment, store_events
from tests.orders.conftest import (
    Chain,
    collect_at_counter,
    ok,
    paid_pickup,
    place,
    quote,
    store_step,
)
from zhongtai.core.clock import utcnow
from zhongtai.core.jobs import PeriodicJob
from zhongtai.integrations.providers import Providers
from zhongtai.inventory.models import Reservation
from zhongtai.inventory.reservations import expire_reservations
from zhongtai.orders import uncollected_orders
from zhongtai.orders.models import ExpiryFailure, Order
from zhongtai.orders.settings import order_settings
from zhongtai.orders.uncollected_orders import GRACE, cancel_uncollected_orders

HOUR = timedelta(hours=1)
PICKUP_HOLD = timedelta(hours=order_settings().pickup_hold_hours)
TRY_ON_HOLD = timedelta(hours=order_settings().try_on_hold_hours)


def _ready(client: TestClient, chain: Chain, order: Any) -> datetime:
    """Accepted, picked, packed and ready at the counter: the moment it became ready."""
    for step in ("accept", "start-picking", "pack"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    before = utcnow()
    store_step(client, chain.clerk, order["id"], "ready")
    return before


def _try_on(client: TestClient, chain: Chain) -> Any:
    booked = {"fulfillment_type": "reserve_try", "store_id": str(chain.store.id)}
    return place(
        client, chain.app, quote(client, chain.app, booked | {"lines": chain.basket(1)})["id"]
    )


def _tracking(client: TestClient, chain: Chain, order: Any) -> Any:
    return ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))


def _order(client: TestClient, chain: Chain, order: Any) -> Any:
    return ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))


def _sweep(session: Session, providers: Providers, at: datetime) -> int:
    dealt = cancel_uncollected_orders(session, providers=providers.payments, now=at)
    session.commit()
    return dealt


def _held(chain: Chain) -> int:
    return chain.stock.balance(chain.store, chain.skus[0]).reserved


def _holds_end(session: Session, order: Any) -> list[datetime]:
    ids = [uuid.UUID(r) for r in _order_row(session, order).reservation_ids]
    return [
        moment(r.expires_at)
        for r in session.scalars(
            select(Reservation)
            .where(Reservation.id.in_(ids))
            .execution_options(populate_existing=True)
        )
    ]


def _order_row(session: Session, order: Any) -> Order:
    row = session.get(Order, uuid.UUID(order["id"]), populate_existing=True)
    assert row is not None
    return row


def test_a_pickup_left_at_the_counter_past_its_hold_is_cancelled_refunded_and_back_on_sale(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = paid_pickup(client, chain, providers, 2)
    ready = _ready(client, chain, order)
    assert _held(chain) == 2
    # Her app tells her until when the order waits, and so does the event that tells her to come.
    collect_by = moment(_tracking(client, chain, order)["pickup"]["collect_by"])
    assert ready + PICKUP_HOLD <= collect_by <= utcnow() + PICKUP_HOLD
    [told] = store_events(session, order, "fulfillment.ready_for_pickup")
    assert abs(moment(told["collect_by"]) - collect_by) < timedelta(seconds=1)

    assert _sweep(session, providers, ready + PICKUP_HOLD - HOUR) == 0
    assert _order(client, chain, order)["status"] == "ready_for_pickup"
    assert _sweep(session, providers, ready + PICKUP_HOLD + HOUR) == 1

    cancelled = _order(client, chain, order)
    assert cancelled["status"] == "cancelled"
    assert cancelled["refunded_amount"] == cancelled["paid_amount"] > 0
    assert _held(chain) == 0
    [event] = store_events(session, order, "order.cancelled")
    assert event["reason"] == "uncollected"
    assert _sweep(session, providers, ready + PICKUP_HOLD + 2 * HOUR) == 0


@pytest.fixture
def paid_hold_of_a_day(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A paid order's stock held one day: shorter than the counter keeps a pickup."""
    monkeypatch.setenv("ZHONGTAI_PAID_HOLD_DAYS", "1")
    order_settings.cache_clear()
    yield
    order_settings.cache_clear()


@pytest.mark.usefixtures("paid_hold_of_a_day")
def test_a_ready_pickup_keeps_its_stock_held_until_a_day_past_the_counters_hold(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = paid_pickup(client, chain, providers, 1)
    ready = _ready(client, chain, order)

    [ends] = _holds_end(session, order)
    assert ready + PICKUP_HOLD + GRACE <= ends <= utcnow() + PICKUP_HOLD + GRACE
    assert expire_reservations(session, ready + PICKUP_HOLD + HOUR) == 0
    assert _held(chain) == 1


def test_a_collected_pickup_is_left_alone(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = paid_pickup(client, chain, providers, 1)
    ready = _ready(client, chain, order)
    collect_at_counter(client, chain, order)

    assert _sweep(session, providers, ready + PICKUP_HOLD + HOUR) == 0
    assert _order(client, chain, order)["status"] == "completed"


def test_a_try_on_booking_holds_its_goods_from_the_booking_not_only_for_the_quotes_minutes(
    client: TestClient, chain: Chain, session: Session
) -> None:
    order = _try_on(client, chain)
    promised_ready = moment(order["promised_ready_at"])

    [ends] = _holds_end(session, order)
    assert ends == promised_ready + TRY_ON_HOLD + GRACE
    assert expire_reservations(session, utcnow() + timedelta(hours=2)) == 0
    assert _held(chain) == 1


def test_a_try_on_whose_customer_did_not_come_is_cancelled_after_its_hold(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _try_on(client, chain)
    ready = _ready(client, chain, order)

    assert _sweep(session, providers, ready + TRY_ON_HOLD - HOUR) == 0
    assert _sweep(session, providers, ready + TRY_ON_HOLD + HOUR) == 1
    cancelled = _order(client, chain, order)
    assert (cancelled["status"], cancelled["refunded_amount"]) == ("cancelled", 0)
    assert _held(chain) == 0
    assert [e["reason"] for e in store_events(session, order, "order.cancelled")] == ["uncollected"]


def test_a_try_on_the_store_never_made_ready_is_cancelled_once_its_hold_after_the_promise_ends(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _try_on(client, chain)
    store_step(client, chain.clerk, order["id"], "accept")
    promised_ready = moment(order["promised_ready_at"])

    assert _sweep(session, providers, promised_ready + TRY_ON_HOLD) == 0
    assert _sweep(session, providers, promised_ready + TRY_ON_HOLD + HOUR) == 1
    assert _order(client, chain, order)["status"] == "cancelled"
    assert [e["reason"] for e in store_events(session, order, "order.cancelled")] == [
        "try_on_not_ready"
    ]


def test_a_pickup_whose_refund_fails_waits_at_the_counter_and_is_tried_again_later(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = paid_pickup(client, chain, providers, 1)
    later = _ready(client, chain, order) + PICKUP_HOLD + HOUR
    cancel = uncollected_orders.cancel_order

    def provider_down(session: Session, order_id: uuid.UUID, **kwargs: Any) -> Any:
        cancel(session, order_id, **kwargs)  # undone by the raise
        raise RuntimeError("payment provider unreachable")

    monkeypatch.setattr(uncollected_orders, "cancel_order", provider_down)
    assert _sweep(session, providers, later) == 1
    assert _order(client, chain, order)["status"] == "ready_for_pickup"
    assert _held(chain) == 1
    failure = session.get(ExpiryFailure, uuid.UUID(order["id"]), populate_existing=True)
    assert failure is not None and failure.attempts == 1
    assert _sweep(session, providers, later) == 0  # passed over until its retry time

    monkeypatch.setattr(uncollected_orders, "cancel_order", cancel)
    assert _sweep(session, providers, failure.retry_at) == 1
    assert _order(client, chain, order)["status"] == "cancelled"
    assert session.get(ExpiryFailure, uuid.UUID(order["id"]), populate_existing=True) is None


def test_serve_runs_the_sweeper_one_order_per_transaction() -> None:
    job = uncollected_orders.uncollected_order_sweeper(30, {})
    assert isinstance(job, PeriodicJob)
    assert (job.name, job.every_seconds, job.chunk) == ("uncollected-order-sweeper", 30, 1)
