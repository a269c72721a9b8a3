"""The unpaid-order sweeper: an order whose cancellation fails is passed over until its retry
time, later after each failure, and the orders behind it are cancelled meanwhile."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.orders.conftest import Chain, place, quote
from zhongtai.core.clock import utcnow
from zhongtai.integrations.providers import Providers
from zhongtai.orders import unpaid_orders
from zhongtai.orders.expiry_failures import failed_since, retry_delay
from zhongtai.orders.models import ExpiryFailure, Order
from zhongtai.orders.unpaid_orders import expire_unpaid_orders


def _pickup_order(client: TestClient, chain: Chain) -> uuid.UUID:
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "pickup", "store_id": str(chain.store.id), "lines": chain.basket(1)},
    )
    return uuid.UUID(place(client, chain.app, q["id"])["id"])


def _status(session: Session, order_id: uuid.UUID) -> str:
    order = session.get(Order, order_id, populate_existing=True)
    assert order is not None
    return order.status.value


@pytest.fixture
def broken_for(monkeypatch: pytest.MonkeyPatch) -> set[uuid.UUID]:
    """Orders whose cancellation raises, as when their payment provider is down."""
    broken: set[uuid.UUID] = set()
    cancel = unpaid_orders.cancel_order

    def cancel_unless_broken(session: Session, order_id: uuid.UUID, **kwargs: Any) -> Any:
        result = cancel(session, order_id, **kwargs)  # its changes are undone by the raise below
        if order_id in broken:
            raise RuntimeError("payment provider unreachable")
        return result

    monkeypatch.setattr(unpaid_orders, "cancel_order", cancel_unless_broken)
    return broken


def test_an_order_that_fails_to_cancel_waits_while_the_orders_behind_it_are_cancelled(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    broken_for: set[uuid.UUID],
) -> None:
    first, second = _pickup_order(client, chain), _pickup_order(client, chain)
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 2
    broken_for.add(first)
    later = utcnow() + timedelta(hours=1)

    def sweep(at: datetime) -> int:
        dealt = expire_unpaid_orders(session, providers=providers.payments, now=at)
        session.commit()
        return dealt

    assert sweep(later) == 1  # the first order, overdue longest: its cancellation fails
    assert _status(session, first) == "created"
    failure = session.get(ExpiryFailure, first, populate_existing=True)
    assert failure is not None
    assert (failure.attempts, failure.retry_at) == (1, later + timedelta(minutes=1))
    assert failure.last_error == "RuntimeError: payment provider unreachable"
    assert sweep(later) == 1  # the next one is cancelled meanwhile
    assert _status(session, second) == "cancelled"
    assert sweep(later) == 0  # nothing more to do until the first order's retry time
    assert failed_since(session, later) == 1
    assert failed_since(session, later + timedelta(seconds=1)) == 0
    # The failed attempt was undone whole: the first order's unit is still held.
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 1

    retry = later + timedelta(minutes=1)
    assert sweep(retry) == 1
    failure = session.get(ExpiryFailure, first, populate_existing=True)
    assert failure is not None
    assert (failure.attempts, failure.retry_at) == (2, retry + timedelta(minutes=2))

    broken_for.clear()  # the provider is back
    assert sweep(retry + timedelta(minutes=1)) == 0
    assert sweep(retry + timedelta(minutes=2)) == 1
    assert _status(session, first) == "cancelled"
    assert session.get(ExpiryFailure, first, populate_existing=True) is None
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0


def test_the_wait_after_a_failed_cancellation_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 6, 7, 50)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 32, 60, 60)
    ]
