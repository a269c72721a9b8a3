"""On PostgreSQL, promise clocks of several API processes at once record a missed promise, and
its event, once; a clock meeting a step that holds the order passes it by rather than wait."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from tests.fulfillment.orders_at_work import order_being_picked
from tests.races import MANY_CONNECTIONS, all_at_once, race_database
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.fulfillment.models import MissedPromise
from zhongtai.fulfillment.promise_clock import flag_missed_promises
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.orders.kinds import FulfillmentType
from zhongtai.orders.models import Order

pytestmark = MANY_CONNECTIONS
CLOCKS = 4


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_promise_clock", pool_size=CLOCKS + 2) as database:
        yield database


def _late(db: Database, gateway: SandboxPaymentGateway, code: str) -> tuple[uuid.UUID, datetime]:
    """A delivery order being picked, and a moment five minutes past its promise."""
    order_id = order_being_picked(db, gateway, FulfillmentType.DELIVERY, code).order_id
    with db.reader() as s:
        promised = s.scalars(select(Order.promised_by).where(Order.id == order_id)).one()
    assert promised is not None
    return order_id, promised + timedelta(minutes=5)


def test_clocks_at_once_record_a_missed_promise_once(
    db: Database, gateway: SandboxPaymentGateway
) -> None:
    _, later = _late(db, gateway, "LATE")

    def clock(_: int) -> int:
        with db.writer() as s, s.begin():
            return flag_missed_promises(s, now=later)

    assert sum(all_at_once(CLOCKS, clock)) == 1
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(MissedPromise)) == 1
        events = s.scalar(
            select(func.count()).where(OutboxEvent.type == "fulfillment.promise_missed")
        )
        assert events == 1


def test_a_clock_passes_by_an_order_a_step_holds_and_records_it_at_its_next_pass(
    db: Database, gateway: SandboxPaymentGateway
) -> None:
    order_id, later = _late(db, gateway, "HELD")

    with db.engine.connect() as clerk:  # a step holding the order's row
        clerk.execute(text("SELECT 1 FROM orders WHERE id = :id FOR UPDATE"), {"id": order_id})
        with db.writer() as s, s.begin():
            s.execute(text("SET LOCAL lock_timeout = '5s'"))
            assert flag_missed_promises(s, now=later) == 0
        clerk.commit()
    with db.writer() as s, s.begin():
        assert flag_missed_promises(s, now=later) == 1
