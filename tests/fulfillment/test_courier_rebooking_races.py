"""On PostgreSQL, stores asking at once for a new rider after a call-off whose transaction was lost
book one: the first ends the dispatch the platform called off and books, the others find that
booking on its way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fulfillment.orders_at_work import order_being_picked
from tests.races import MANY_CONNECTIONS, all_at_once, race_database
from zhongtai.core.db import Database
from zhongtai.fulfillment import courier, tasks
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus
from zhongtai.integrations.couriers.simulated import SimulatedCourierFleet
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.integrations.providers import Providers
from zhongtai.orders.kinds import FulfillmentType
from zhongtai.orders.lifecycle import get_order

pytestmark = MANY_CONNECTIONS
CALLBACK = "http://127.0.0.1:9/callback"


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_courier_rebook", pool_size=4) as database:
        yield database


def test_stores_rebooking_at_once_after_a_lost_call_off_book_one_rider(
    db: Database, gateway: SandboxPaymentGateway
) -> None:
    fleet = SimulatedCourierFleet("race-fleet", auto=False)
    order_id = order_being_picked(db, gateway, FulfillmentType.DELIVERY, "REBOOK").order_id
    with db.writer() as s, s.begin():
        tasks.pack_order(s, order_id, providers={"sandbox": gateway})
        first = courier.dispatch_courier(s, order_id, courier=fleet, callback_url=CALLBACK)
        called_off = first.courier_ref
    assert called_off is not None
    with db.writer() as s:  # the platform takes the call-off; our transaction is lost
        order = get_order(s, order_id, for_update=True)
        courier.call_off_rider(s, order, Providers(couriers={fleet.name: fleet}))
        s.rollback()

    def rebook(_: int) -> str | None:
        with db.writer() as s, s.begin():
            return courier.dispatch_courier(
                s, order_id, courier=fleet, callback_url=CALLBACK
            ).courier_ref

    booked = set(all_at_once(3, rebook))
    assert len(booked) == 1 and called_off not in booked
    [rebooked] = booked
    assert rebooked is not None and fleet.advance(rebooked).status == "assigned"
    with db.reader() as s:
        dispatches = s.query(CourierDispatch).filter_by(order_id=order_id).all()
        assert sorted((d.courier_ref == rebooked, d.status) for d in dispatches) == [
            (False, DispatchStatus.CANCELLED),
            (True, DispatchStatus.REQUESTED),
        ]
    fleet.close()
