"""The uncollected-order sweeper and the counter at once, on PostgreSQL: the customer turns up
with her code just as the counter's hold ends, while the sweepers of several `serve` processes
look for orders to cancel. The order is handed over or cancelled, never both, and a cancelled
order is refunded once: every step locks the order's row first, and a sweeper skips an order
another transaction holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from tests.fulfillment.conftest import gateway as gateway  # the sandbox the orders are paid on
from tests.fulfillment.test_pickup_concurrency import (
    HANDED_OVER,
    WaitingPickup,
    on_postgres,
    status_of,
    try_code,
    waiting_pickup,
)
from tests.races import all_at_once, race_database, stock_of, until_another_backend_waits_for_a_lock
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.models import Refund
from zhongtai.orders.settings import order_settings
from zhongtai.orders.uncollected_orders import cancel_uncollected_orders

SWEEPERS = 8
PAST_THE_HOLD = timedelta(hours=order_settings().pickup_hold_hours + 1)


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    with race_database("zt_uncollected_race", pool_size=8) as database:
        yield database


def sweep(db: Database, gateway: SandboxPaymentGateway) -> int:
    """One sweeper's pass, in a transaction of its own as `serve` runs it."""
    with db.writer() as s, s.begin():
        return cancel_uncollected_orders(
            s, providers={"sandbox": gateway}, now=utcnow() + PAST_THE_HOLD
        )


def refunds_of(db: Database, waiting: WaitingPickup) -> int:
    with db.reader() as s:
        return s.scalar(
            select(func.count()).select_from(Refund).where(Refund.order_id == waiting.order_id)
        )


@on_postgres
@pytest.mark.parametrize("attempt", range(4))
def test_sweepers_and_the_customer_at_the_counter_at_once_hand_over_or_cancel_once(
    pg: Database, gateway: SandboxPaymentGateway, attempt: int
) -> None:
    waiting = waiting_pickup(pg, gateway, f"UNCOLLECTED{attempt}")

    def one(i: int) -> int:
        return try_code(pg, waiting, waiting.code) if i == 0 else sweep(pg, gateway)

    answers = all_at_once(SWEEPERS + 1, one)
    at_the_counter, swept = answers[0], Counter(answers[1:])
    if at_the_counter == HANDED_OVER:
        assert swept == {0: SWEEPERS}
        assert status_of(pg, waiting.order_id) is OrderStatus.COMPLETED
        assert stock_of(pg, waiting.store_id, waiting.sku_id) == (8, 0)
        assert refunds_of(pg, waiting) == 0
    else:
        assert at_the_counter == 409
        assert swept == {1: 1, 0: SWEEPERS - 1}
        assert status_of(pg, waiting.order_id) is OrderStatus.CANCELLED
        assert stock_of(pg, waiting.store_id, waiting.sku_id) == (10, 0)
        assert refunds_of(pg, waiting) == 1


@on_postgres
def test_the_customer_waiting_on_a_sweepers_cancellation_is_told_it_was_cancelled(
    pg: Database, gateway: SandboxPaymentGateway
) -> None:
    waiting = waiting_pickup(pg, gateway, "UNCOLLECTEDWAIT")
    with pg.writer() as sweeper, ThreadPoolExecutor(1) as counter:
        assert (
            cancel_uncollected_orders(
                sweeper, providers={"sandbox": gateway}, now=utcnow() + PAST_THE_HOLD
            )
            == 1
        )
        own_pid = sweeper.execute(text("SELECT pg_backend_pid()")).scalar_one()
        handover = counter.submit(try_code, pg, waiting, waiting.code)
        until_another_backend_waits_for_a_lock(pg, own_pid)
        sweeper.commit()
        assert handover.result(timeout=30) == 409
    assert status_of(pg, waiting.order_id) is OrderStatus.CANCELLED
    assert stock_of(pg, waiting.store_id, waiting.sku_id) == (10, 0)
    assert sweep(pg, gateway) == 0  # nothing left to cancel
    assert refunds_of(pg, waiting) == 1
