"""Orders left at the counter: a paid pickup not collected within ``pickup_hold_hours`` of being
ready, a try-on booking whose customer did not come within ``try_on_hold_hours`` (or that the
store never made ready by then after the ready time promised). `serve`'s sweeper cancels them,
one order per transaction: what was paid goes back to the tenders it came from, and the goods
go back on sale (the goods themselves the store puts back on the shelf, or writes off if they
spoiled waiting).

Until then the order's stock stays held: it is kept from the moment the order is ready (a
try-on booking's from the moment it is placed, as nothing is paid for it) until a day past
the sweeper's due time, so that the sweeper, not the hold lapsing under an order still waiting,
ends it. An order whose cancellation fails is tried again later, as unpaid orders are
(:mod:`~zhongtai.orders.expiry_failures`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.jobs import PeriodicJob
from zhongtai.core.logging import get_logger
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.inventory.order_holds import extend_hold
from zhongtai.orders.expiry_failures import cancel_or_retry_later, not_waiting
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.lifecycle import entered_at
from zhongtai.orders.models import Order
from zhongtai.orders.payments import cancel_order
from zhongtai.orders.settings import order_settings

log = get_logger("zhongtai.orders")

#: How much longer than the counter's hold the stock stays held: the sweeper ends the order.
GRACE = timedelta(days=1)
#: A try-on booking the store has not made ready yet.
_BOOKED = (OrderStatus.CREATED, OrderStatus.ACCEPTED, OrderStatus.PICKING, OrderStatus.PACKED)
_READY = OrderStatus.READY_FOR_PICKUP


def counter_hold(fulfillment_type: FulfillmentType) -> timedelta:
    """How long an order of the type waits at the counter."""
    settings = order_settings()
    if fulfillment_type is FulfillmentType.RESERVE_TRY:
        return timedelta(hours=settings.try_on_hold_hours)
    return timedelta(hours=settings.pickup_hold_hours)


def collect_by(fulfillment_type: FulfillmentType, ready_since: datetime) -> datetime:
    """Until when an order ready since ``ready_since`` waits at the counter."""
    return ready_since + counter_hold(fulfillment_type)


def keep_at_counter(session: Session, order: Order, since: datetime) -> None:
    """Hold the order's stock while it waits at the counter from ``since``, and a day more. A
    hold that ended already (stock back on sale before the order was ready) is logged: the
    store sees it when the goods are missing."""
    until = collect_by(order.fulfillment_type, since) + GRACE
    for reservation_id in order.reservation_ids:
        if not extend_hold(session, uuid.UUID(reservation_id), until):
            log.warning(
                "order.hold_ended_before_counter",
                order_id=str(order.id),
                reservation_id=reservation_id,
            )


def uncollected_order_sweeper(
    every_seconds: float, payments: Mapping[str, PaymentProvider]
) -> PeriodicJob:
    """The housekeeping job cancelling orders left at the counter, one per transaction."""
    return PeriodicJob(
        "uncollected-order-sweeper",
        every_seconds,
        partial(cancel_uncollected_orders, providers=payments),
        chunk=1,
    )


def cancel_uncollected_orders(
    session: Session,
    *,
    providers: Mapping[str, PaymentProvider],
    now: datetime | None = None,
) -> int:
    """Cancel one order left at the counter past its hold (reason ``uncollected``, or
    ``try_on_not_ready`` for a booking the store never made ready), refunding it and releasing
    its stock; how many orders it dealt with (0 or 1). One per transaction, as the unpaid-order
    sweeper does and for the same reasons (lock order); a failed cancellation is undone to its
    savepoint, recorded and tried again later."""
    now = now or utcnow()
    due = _next_due(session, now)
    if due is None:
        return 0
    order_id, reason = due
    cancel = partial(cancel_order, session, order_id, reason=reason, providers=providers)
    cancel_or_retry_later(
        session, order_id, cancel, now=now, event="order.uncollected_expiry_failed"
    )
    return 1


def _next_due(session: Session, now: datetime) -> tuple[uuid.UUID, str] | None:
    pickup_by = now - counter_hold(FulfillmentType.PICKUP)
    try_on_by = now - counter_hold(FulfillmentType.RESERVE_TRY)
    ready_since = entered_at(_READY)
    uncollected = select(Order.id).where(
        Order.status == _READY,
        or_(
            and_(Order.fulfillment_type == FulfillmentType.PICKUP, ready_since < pickup_by),
            and_(Order.fulfillment_type == FulfillmentType.RESERVE_TRY, ready_since < try_on_by),
        ),
    )
    never_ready = select(Order.id).where(
        Order.status.in_(_BOOKED),
        Order.fulfillment_type == FulfillmentType.RESERVE_TRY,
        Order.promised_ready_at < try_on_by,
    )
    for stmt, reason in ((uncollected, "uncollected"), (never_ready, "try_on_not_ready")):
        found = session.scalars(
            stmt.where(not_waiting(now))
            .order_by(Order.id)
            .limit(1)
            .with_for_update(of=Order, skip_locked=True)  # each worker's sweeper takes another
        ).first()
        if found is not None:
            return found, reason
    return None
