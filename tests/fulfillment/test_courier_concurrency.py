"""On PostgreSQL, a rider's status callback takes the order's row before its dispatch's, as a
cancellation does, so the two never deadlock."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from tests.fulfillment.orders_at_work import order_being_picked
from tests.races import MANY_CONNECTIONS, race_database, until_another_backend_waits_for_a_lock
from zhongtai.core.db import Database
from zhongtai.fulfillment import courier, courier_callbacks, tasks
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus
from zhongtai.integrations.couriers.simulated import SimulatedCourierFleet
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.orders.kinds import FulfillmentType

pytestmark = MANY_CONNECTIONS
LOCK_ORDER = text("SELECT 1 FROM orders WHERE id = :id FOR UPDATE")
LOCK_DISPATCH = text("SELECT 1 FROM courier_dispatches WHERE order_id = :id FOR UPDATE")


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_courier_race", pool_size=4) as database:
        yield database


def test_a_rider_callback_waits_for_the_order_before_it_locks_the_dispatch(
    db: Database, gateway: SandboxPaymentGateway
) -> None:
    fleet = SimulatedCourierFleet("race-fleet", auto=False)
    order_id = order_being_picked(db, gateway, FulfillmentType.DELIVERY, "RIDERACE").order_id
    with db.writer() as s, s.begin():
        tasks.pack_order(s, order_id, providers={"sandbox": gateway})
        ref = courier.dispatch_courier(
            s, order_id, courier=fleet, callback_url="http://127.0.0.1:9/callback"
        ).courier_ref
    assert ref is not None
    fleet.advance(ref)  # a rider accepted the job; the platform calls back
    [assigned] = fleet.signed_callbacks(ref)

    def call_back() -> DispatchStatus:
        with db.writer() as s, s.begin():
            return courier_callbacks.apply_courier_callback(
                s, fleet, assigned.headers, assigned.body
            ).status

    # A cancellation locks the order's row, then its dispatch's.
    with db.engine.connect() as cancelling, ThreadPoolExecutor(1) as platform:
        cancelling.execute(LOCK_ORDER, {"id": order_id})
        own_pid = cancelling.execute(text("SELECT pg_backend_pid()")).scalar_one()
        calling_back = platform.submit(call_back)
        until_another_backend_waits_for_a_lock(db, own_pid)
        # Had the callback locked the dispatch first, this would wait for it: a deadlock.
        cancelling.execute(text("SET LOCAL lock_timeout = '10s'"))
        cancelling.execute(LOCK_DISPATCH, {"id": order_id})
        cancelling.commit()
        assert calling_back.result(timeout=30) is DispatchStatus.ASSIGNED
    with db.reader() as s:
        [dispatch] = s.query(CourierDispatch).filter_by(order_id=order_id).all()
        assert (dispatch.status, dispatch.last_sequence) == (DispatchStatus.ASSIGNED, 1)
    fleet.close()
