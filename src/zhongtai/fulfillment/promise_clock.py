"""The promise clock: an order not delivered, or not ready to collect, by the moment its checkout
promised is recorded once as a missed promise, with a ``fulfillment.promise_missed`` event for
the store's queue and the HQ dashboards (the chain's on-time rate).

The SLA clock (:mod:`zhongtai.fulfillment.sla`) times the store's own work, picking and
packing, against the moment the goods must be ready; this one times what the customer was
promised (``promised_by``): her doorstep for a delivery or a parcel (30 minutes, a day), the
moment her order is ready to collect for a pickup or a try-on (for these ``promised_by`` is the
ready time). A delivery or parcel is late while it is still in the store (paid to packed) or on
its way (out for delivery, shipped) past that moment; a pickup or try-on while it is not yet
ready: a pickup packed on time but never marked ready leaves its customer without the message
to come, and is late too. An unpaid order is not yet the store's to keep (a try-on booking,
never paid up front, is from the start), a cancelled one no longer is.

The orders found late are locked, skipping any a step holds (a rider's callback completing it
at this very moment, a clerk packing it): the status recorded is the order's current one, and
an order delivered while the clock looked is judged again at its next pass. The record is
written once per order (its id is the key), so clocks in several processes at once record a
missed promise, and its event, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.jobs import PeriodicJob
from zhongtai.core.outbox import record_event
from zhongtai.fulfillment.events import PromiseMissed
from zhongtai.fulfillment.models import MissedPromise
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.models import Order

_IN_THE_STORE = (
    OrderStatus.PAID,
    OrderStatus.ACCEPTED,
    OrderStatus.PICKING,
    OrderStatus.PACKED,
)
#: By fulfilment type, the statuses in which an order is the store's to keep and not yet kept.
LATE_WHILE: Mapping[FulfillmentType, tuple[OrderStatus, ...]] = {
    FulfillmentType.DELIVERY: (*_IN_THE_STORE, OrderStatus.OUT_FOR_DELIVERY),
    FulfillmentType.SHIP: (*_IN_THE_STORE, OrderStatus.SHIPPED),
    FulfillmentType.PICKUP: _IN_THE_STORE,
    # Booked, never paid up front: the store sets the goods aside from the booking on.
    FulfillmentType.RESERVE_TRY: (OrderStatus.CREATED, *_IN_THE_STORE[1:]),
}
_LATE = tuple(dict.fromkeys(status for kept in LATE_WHILE.values() for status in kept))
#: Orders recorded per transaction; the job calls again while a call comes back full.
BATCH = 200
#: How far back the clock looks for promises passed. Orders that stay under way long after
#: their promise (parcels whose delivery is never confirmed) would otherwise be read again at
#: every pass, forever; a promise missed longer ago than this while `serve` was not running is
#: old news, not a call to make.
LOOKBACK = timedelta(days=3)


def promise_clock(every_seconds: float) -> PeriodicJob:
    """The housekeeping job: orders found late, ``BATCH`` per transaction."""
    return PeriodicJob("promise-clock", every_seconds, flag_missed_promises, chunk=BATCH)


def flag_missed_promises(
    session: Session, *, now: datetime | None = None, batch: int = BATCH
) -> int:
    """Record orders not yet delivered or ready past their promise, at most ``batch``, each
    once with its event; how many were recorded."""
    now = now or utcnow()
    late = session.execute(
        select(Order.id, Order.store_id, Order.fulfillment_type, Order.status, Order.promised_by)
        .where(
            Order.status.in_(_LATE),  # the index's leading column
            Order.promised_by < now,
            Order.promised_by >= now - LOOKBACK,
            or_(
                *(
                    and_(Order.fulfillment_type == kind, Order.status.in_(kept))
                    for kind, kept in LATE_WHILE.items()
                )
            ),
            ~exists().where(MissedPromise.order_id == Order.id),
        )
        .order_by(Order.promised_by)
        .limit(batch)
        .with_for_update(skip_locked=True, key_share=True)
    ).all()
    found = [
        PromiseMissed(
            order_id=order_id,
            store_id=store_id,
            fulfillment_type=fulfillment_type.value,
            order_status=status.value,
            promised_by=promised_by,
            detected_at=now,
        )
        for order_id, store_id, fulfillment_type, status, promised_by in late
    ]
    if not found:
        return 0
    # The row holds what the event says. Written unless another clock recorded the order first
    # (PostgreSQL waits for a transaction inserting it).
    written = set(
        session.scalars(
            conflict_insert(session)(MissedPromise)
            .values([missed.model_dump() for missed in found])
            .on_conflict_do_nothing(index_elements=[MissedPromise.order_id])
            .returning(MissedPromise.order_id)
        )
    )
    for missed in found:
        if missed.order_id in written:
            record_event(
                session,
                missed,
                aggregate_type="order",
                aggregate_id=missed.order_id,
                store_id=missed.store_id,
            )
    return len(written)
