"""On PostgreSQL, packing an order with a short pick and a substitute takes its row locks in the
order every checkout takes them, so the two never deadlock."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text

from tests.fulfillment.orders_at_work import order_being_picked
from tests.races import (
    MANY_CONNECTIONS,
    race_database,
    stock_of,
    until_another_backend_waits_for_a_lock,
)
from zhongtai.core.db import Database
from zhongtai.fulfillment import tasks
from zhongtai.fulfillment.picking import SubstituteAsked
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.orders.kinds import (
    FulfillmentType,
    OrderStatus,
)
from zhongtai.orders.models import Order

pytestmark = MANY_CONNECTIONS
LOCK_ROW = text(
    "SELECT on_hand FROM stock_balances WHERE location_id = :location AND sku_id = :sku FOR UPDATE"
)


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_pack_race", pool_size=4) as database:
        yield database


def test_packing_a_short_pick_with_a_substitute_never_deadlocks_with_a_checkout(
    db: Database, gateway: SandboxPaymentGateway
) -> None:
    picking = order_being_picked(db, gateway, FulfillmentType.PICKUP, "PACKRACE")
    store_id, order_id = picking.store_id, picking.order_id
    ordered, similar = picking.ordered, picking.similar
    with db.reader() as s:
        line_id = s.scalars(select(Order).where(Order.id == order_id)).one().lines[0].id

    def pack() -> OrderStatus:
        with db.writer() as s, s.begin():
            packed = tasks.pack_order(
                s,
                order_id,
                picks=[tasks.LinePick(line_id, picked=1, substitute=SubstituteAsked(similar, 1))],
                providers={"sandbox": gateway},
            )
            return packed.status

    # A checkout of both SKUs locks their rows in lock order: the similar SKU's row first.
    with db.engine.connect() as checkout_conn, ThreadPoolExecutor(1) as packer:
        checkout_conn.execute(LOCK_ROW, {"location": store_id, "sku": similar})
        checkout_pid = checkout_conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        packing = packer.submit(pack)
        until_another_backend_waits_for_a_lock(db, checkout_pid)
        # The pack waits for the similar SKU's row. Had it taken the ordered SKU's row first
        # (freeing the short-picked unit), this would wait for it: a deadlock.
        checkout_conn.execute(text("SET LOCAL lock_timeout = '10s'"))
        checkout_conn.execute(LOCK_ROW, {"location": store_id, "sku": ordered})
        checkout_conn.commit()
        assert packing.result(timeout=30) is OrderStatus.PACKED
    assert stock_of(db, store_id, ordered) == (10, 1)  # one unit picked, still held
    assert stock_of(db, store_id, similar) == (9, 0)  # the substitute left the shelf
