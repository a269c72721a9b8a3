"""On PostgreSQL, courier watches of several API processes and a store booking again, all at once
for one dropped job, book one rider: whoever locks the order first ends the dispatch and books,
the others find the dispatch moved and the new booking under way. Watches catching up on a
"delivered" whose callback comes after all, at the same moment, complete the order once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.fulfillment.orders_at_work import order_being_picked
from tests.races import MANY_CONNECTIONS, all_at_once, race_database
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.fulfillment import courier, courier_callbacks, tasks
from zhongtai.fulfillment.courier_watch import look_after_a_quiet_job
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus
from zhongtai.integrations.couriers.simulated import SimulatedCourierFleet
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.integrations.providers import Providers
from zhongtai.orders.kinds import FulfillmentType

pytestmark = MANY_CONNECTIONS
CALLBACK = "http://127.0.0.1:9/callback"
WATCHES = 4


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_courier_watch", pool_size=WATCHES + 2) as database:
        yield database


def _booked(
    db: Database, gateway: SandboxPaymentGateway, fleet: SimulatedCourierFleet, name: str
) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A packed delivery order with a rider booked: the order, the dispatch and its job."""
    order_id = order_being_picked(db, gateway, FulfillmentType.DELIVERY, name).order_id
    with db.writer() as s, s.begin():
        tasks.pack_order(s, order_id, providers={"sandbox": gateway})
        booked = courier.dispatch_courier(s, order_id, courier=fleet, callback_url=CALLBACK)
        assert booked.courier_ref is not None
        return order_id, booked.id, booked.courier_ref


def _quiet(db: Database, courier_ref: str) -> None:
    """Nothing heard of the job for half an hour."""
    with db.writer() as s, s.begin():
        s.execute(
            update(CourierDispatch)
            .where(CourierDispatch.courier_ref == courier_ref)
            .values(updated_at=utcnow() - timedelta(minutes=30))
        )


def test_watches_and_a_store_booking_again_at_once_for_a_dropped_job_book_one_rider(
    db: Database, gateway: SandboxPaymentGateway
) -> None:
    fleet = SimulatedCourierFleet("race-fleet", auto=False)
    couriers = Providers(couriers={fleet.name: fleet})
    order_id, dropped_id, dropped_ref = _booked(db, gateway, fleet, "WATCH")
    fleet.cancel(dropped_ref)  # the platform ends the job without a word
    _quiet(db, dropped_ref)

    def watch_or_book(i: int) -> None:
        with db.writer() as s, s.begin():
            if i == 0:
                courier.dispatch_courier(s, order_id, courier=fleet, callback_url=CALLBACK)
            else:
                look_after_a_quiet_job(s, couriers=couriers, quiet_for=timedelta(minutes=10))

    all_at_once(WATCHES + 1, watch_or_book)

    with db.reader() as s:
        dispatches = s.scalars(
            select(CourierDispatch).where(CourierDispatch.order_id == order_id)
        ).all()
        by_status = sorted((d.id == dropped_id, d.status) for d in dispatches)
        assert by_status == [(False, DispatchStatus.REQUESTED), (True, DispatchStatus.CANCELLED)]
        [booked] = [d for d in dispatches if d.status is DispatchStatus.REQUESTED]
        assert booked.callback_url == CALLBACK
        lost = s.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.type == "fulfillment.courier_job_lost")
        ).all()
        # A watch that came first says it booked again; a store that came first ended the job
        # itself, and the watches behind it found nothing quiet.
        assert [e["rebooked_dispatch_id"] for e in lost] in ([], [str(booked.id)])
    assert booked.courier_ref is not None
    # One rider at the platform: the dropped job and the one booked in its place.
    riders = fleet._by_ref.values()
    assert sorted(d.cancelled for d in riders) == [False, True]
    assert fleet.advance(booked.courier_ref).status == "assigned"
    fleet.close()


def test_watches_and_the_late_delivered_callback_at_once_complete_the_order_once(
    db: Database, gateway: SandboxPaymentGateway
) -> None:
    fleet = SimulatedCourierFleet("race-fleet", auto=False)
    couriers = Providers(couriers={fleet.name: fleet})
    order_id, _, ref = _booked(db, gateway, fleet, "CATCHUP")
    for _ in range(4):  # assigned, at the store, picked up, delivered
        fleet.advance(ref)
    *heard, delivered = fleet.signed_callbacks(ref)
    with db.writer() as s, s.begin():
        for callback in heard:
            courier_callbacks.apply_courier_callback(s, fleet, callback.headers, callback.body)
    _quiet(db, ref)

    def watch_or_call_back(i: int) -> None:
        with db.writer() as s, s.begin():
            if i == 0:
                courier_callbacks.apply_courier_callback(
                    s, fleet, delivered.headers, delivered.body
                )
            else:
                look_after_a_quiet_job(s, couriers=couriers, quiet_for=timedelta(minutes=10))

    all_at_once(WATCHES + 1, watch_or_call_back)

    with db.reader() as s:
        [dispatch] = s.scalars(
            select(CourierDispatch).where(CourierDispatch.order_id == order_id)
        ).all()
        assert (dispatch.status, dispatch.last_sequence) == (DispatchStatus.DELIVERED, 4)
        counts = dict(
            s.execute(
                select(OutboxEvent.type, func.count())
                .where(
                    OutboxEvent.aggregate_id == str(order_id),
                    OutboxEvent.type.in_(("order.completed", "fulfillment.courier_updated")),
                )
                .group_by(OutboxEvent.type)
            ).all()
        )
        assert counts == {"order.completed": 1, "fulfillment.courier_updated": 4}
    fleet.close()
