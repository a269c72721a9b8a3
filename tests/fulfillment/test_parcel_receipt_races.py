"""On PostgreSQL, the parcel-receipt jobs of several API processes and a clerk confirming the
parcel delivered, all at once, complete the order once, with one ``order.completed`` event."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.fulfillment.conftest import gateway as gateway  # the sandbox the orders are paid on
from tests.fulfillment.orders_at_work import order_being_picked
from tests.races import MANY_CONNECTIONS, all_at_once, race_database
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.fulfillment import tasks
from zhongtai.fulfillment.parcel_receipts import confirm_unconfirmed_parcels
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.models import Order
from zhongtai.orders.settings import order_settings

pytestmark = MANY_CONNECTIONS
CLOCKS = 6


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_parcel_receipts", pool_size=CLOCKS + 2) as database:
        yield database


def _shipped(db: Database, gateway: SandboxPaymentGateway, code: str) -> uuid.UUID:
    order_id = order_being_picked(db, gateway, FulfillmentType.SHIP, code).order_id
    with db.writer() as s, s.begin():
        tasks.pack_order(s, order_id, providers={"sandbox": gateway})
        tasks.ship_order(s, order_id, carrier="SF", tracking_number=f"SF{code}")
    return order_id


@pytest.mark.parametrize("attempt", range(3))
def test_receipt_jobs_and_the_clerk_at_once_complete_the_parcel_once(
    db: Database, gateway: SandboxPaymentGateway, attempt: int
) -> None:
    order_id = _shipped(db, gateway, f"PARCEL{attempt}")
    later = utcnow() + timedelta(days=order_settings().parcel_confirm_days, hours=1)

    def one(i: int) -> int:
        with db.writer() as s, s.begin():
            if i == 0:  # the carrier's word, entered by the store
                tasks.confirm_delivery(s, order_id)
                return 0
            return confirm_unconfirmed_parcels(s, now=later)

    assert sum(all_at_once(CLOCKS + 1, one)) <= 1
    with db.reader() as s:
        status = s.scalars(select(Order.status).where(Order.id == order_id)).one()
        completed = s.scalar(
            select(func.count()).where(
                OutboxEvent.type == "order.completed", OutboxEvent.aggregate_id == str(order_id)
            )
        )
    assert status is OrderStatus.COMPLETED
    assert completed == 1
