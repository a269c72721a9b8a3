"""Instant delivery by rider: book a courier for a packed order and call it off. Its signed
status callbacks (the rider collecting the parcel ships the stock, delivery completes the order)
are applied by :mod:`zhongtai.fulfillment.courier_callbacks`.

Booking a rider and calling one off are HTTP calls to the platform made inside the request's
transaction, so the platform may act on a call whose transaction is then lost (a later step of the
request fails, a conflict, the process dies before the commit). Nothing undoes such a call; both
are made so that doing the same thing again converges on one state the two sides agree on:

- A booking sends the dispatch's id as the platform's idempotency key, made from the order's
  dispatches so far: a booking retried after its transaction was lost books the same rider.
- Calling off is harmless to repeat at the platform, and a job the platform does not know is as
  good as called off: no rider comes for it, no callback follows. A cancel retried after its
  transaction was lost (with the same Idempotency-Key or none: a key is bound only by a commit)
  calls off again and ends the dispatch.
- Asking for a rider while a dispatch is on asks the platform where its job stands. A job it
  still has is the booking under way, answered again. One it cancelled or does not know ends our
  dispatch (cancelled; logged as ``courier.job_ended_at_platform``) and a new rider is booked:
  an order whose cancel failed after the platform took the call-off gets a rider when the store
  books again, rather than waiting for one who was called off and whose callbacks never come.

Callbacks stay the platform's word on a job's progress: asking fills only the gap they cannot, a
job ended without one. Whatever ends a dispatch holds the order's row, then the dispatch's, as
callbacks take them, so concurrent retries queue one behind the other instead of booking twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, NotFound
from zhongtai.core.ids import replayable_id
from zhongtai.core.logging import get_logger
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus, FulfillmentTask
from zhongtai.integrations.couriers.provider import (
    CourierService,
    DispatchRequest,
    GeoPoint,
)
from zhongtai.integrations.providers import Providers
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Order
from zhongtai.stores.models import Location

log = get_logger("zhongtai.fulfillment")

#: A rider on her way to the store: she can still be called off, and the platform can drop the
#: job without a word.
BEFORE_PICKUP = (
    DispatchStatus.REQUESTED,
    DispatchStatus.ASSIGNED,
    DispatchStatus.ARRIVED_AT_STORE,
)
#: A dispatch not yet ended: before the pickup, or with the parcel.
ACTIVE = (*BEFORE_PICKUP, DispatchStatus.PICKED_UP)


def dispatch_courier(
    session: Session, order_id: uuid.UUID, *, courier: CourierService, callback_url: str
) -> CourierDispatch:
    """Book a rider for a packed delivery order; asking again answers the booking under way if
    its platform still has the job, else ends it and books anew. A booking with another platform
    than ``courier`` is answered as it stands: only its own platform could say otherwise."""
    order = get_order(session, order_id, for_update=True)
    if order.fulfillment_type is not FulfillmentType.DELIVERY:
        raise Conflict(f"Order {order.number} is not a delivery order.", order_id=str(order.id))
    if order.status is not OrderStatus.PACKED:
        raise Conflict(
            f"Order {order.number} is {order.status.value}; a rider is booked once it is packed.",
            order_id=str(order.id),
            order_status=order.status.value,
        )
    existing = _active_dispatch(session, order.id, for_update=True)
    if existing is not None:
        if existing.provider != courier.name or still_on_the_job(existing, courier):
            return existing
        ended_at_the_platform(order, existing)
    store = session.get(Location, order.store_id)
    address = order.address or {}
    if store is None or "latitude" not in address:
        raise Conflict(f"Order {order.number} has no delivery address to send a rider to.")
    dispatch = CourierDispatch(
        id=_booking_id(session, order, courier.name), order_id=order.id, provider=courier.name
    )
    session.add(dispatch)
    session.flush()
    ticket = courier.dispatch(
        DispatchRequest(
            dispatch_id=dispatch.id,
            order_id=order.id,
            store_id=store.id,
            pickup=GeoPoint(store.latitude, store.longitude),
            dropoff=GeoPoint(float(address["latitude"]), float(address["longitude"])),
            ready_at=_packed_at(session, order.id),
            callback_url=callback_url,
        )
    )
    dispatch.courier_ref = ticket.courier_ref
    dispatch.estimated_delivery_at = ticket.delivered_at
    dispatch.callback_url = callback_url
    return dispatch


def still_on_the_job(dispatch: CourierDispatch, courier: CourierService) -> bool:
    """Whether the platform still has the dispatch's job: not called off, and known to it. A job
    it has moved on (a rider assigned, even one delivered) is on: its callbacks tell the rest."""
    job = courier.job(dispatch.courier_ref) if dispatch.courier_ref else None
    return job is not None and not job.cancelled


def ended_at_the_platform(order: Order, dispatch: CourierDispatch) -> None:
    """The platform ended the job without a word back (a call-off it took in a transaction of
    ours that was lost, a job it cancelled or forgot): no rider is coming, so neither is our
    dispatch. Logged for the store, whose rider never came."""
    dispatch.status = DispatchStatus.CANCELLED
    log.warning(
        "courier.job_ended_at_platform",
        dispatch_id=str(dispatch.id),
        order_id=str(order.id),
        courier_ref=dispatch.courier_ref,
    )


def _booking_id(session: Session, order: Order, provider: str) -> uuid.UUID:
    """The dispatch's id, the platform's idempotency key for the booking: the same for the same
    booking (the order's dispatches so far, the platform), so a booking retried after its
    transaction was lost -- the rider booked, the commit failed -- books one rider, not two."""
    earlier = session.scalar(
        select(func.count())
        .select_from(CourierDispatch)
        .where(CourierDispatch.order_id == order.id)
    )
    return replayable_id(order.placed_at, earlier or 0, "dispatch", order.id, provider)


def _packed_at(session: Session, order_id: uuid.UUID) -> datetime:
    """When the parcel was ready: the pack, as its task recorded it (a booking retried later
    asks for the same rider, so it names the same moment)."""
    packed = session.scalar(
        select(FulfillmentTask.packed_at)
        .where(FulfillmentTask.order_id == order_id, FulfillmentTask.packed_at.is_not(None))
        .order_by(FulfillmentTask.packed_at.desc())
        .limit(1)
    )
    return packed or utcnow()


def call_off_rider(session: Session, order: Order, couriers: Providers) -> None:
    """Call off the rider booked for an order about to be cancelled (none booked: nothing to
    do). A rider who already has the parcel makes it a 409: the goods are on their way. A job
    the platform called off already, or does not know, ends the dispatch all the same."""
    dispatch = _active_dispatch(session, order.id, for_update=True)
    if dispatch is not None:
        call_off_dispatch(order, dispatch, couriers.courier(dispatch.provider))


def call_off_for_another(
    session: Session, order_id: uuid.UUID, couriers: Providers
) -> CourierDispatch:
    """Call off the rider booked for a packed delivery order that stays on sale: the store books
    again, perhaps on another platform (the rider is late, the platform slow to find one). A
    rider who has the parcel makes it a 409, as does an order with no rider booked. The dispatch
    called off, now cancelled."""
    order = get_order(session, order_id, for_update=True)
    if order.fulfillment_type is not FulfillmentType.DELIVERY:
        raise Conflict(f"Order {order.number} is not a delivery order.", order_id=str(order.id))
    dispatch = _active_dispatch(session, order.id, for_update=True)
    if dispatch is None:
        raise Conflict(
            f"Order {order.number} has no rider booked to call off.",
            order_id=str(order.id),
            order_status=order.status.value,
        )
    call_off_dispatch(order, dispatch, couriers.courier(dispatch.provider))
    return dispatch


def call_off_dispatch(order: Order, dispatch: CourierDispatch, courier: CourierService) -> None:
    """Call off the dispatch's rider at her platform and end it (a job the platform does not know
    ends it all the same); 409 once she has the parcel."""
    if dispatch.status is DispatchStatus.PICKED_UP:
        raise Conflict(
            f"The rider picked order {order.number} up; it can no longer be cancelled, "
            "only returned once delivered.",
            order_id=str(order.id),
            dispatch_status=dispatch.status.value,
        )
    if dispatch.courier_ref is None:
        ended_at_the_platform(order, dispatch)
        return
    try:
        courier.cancel(dispatch.courier_ref)
    except NotFound:
        ended_at_the_platform(order, dispatch)
        return
    except Conflict as refused:
        raise Conflict(
            f"Order {order.number} can no longer be cancelled: {refused.detail}",
            order_id=str(order.id),
        ) from refused
    dispatch.status = DispatchStatus.CANCELLED
    log.info("courier.called_off", dispatch_id=str(dispatch.id), order_id=str(order.id))


def delivery_failed(session: Session, order_id: uuid.UUID) -> bool:
    """Whether the order's last rider reported its delivery failed: the parcel comes back."""
    last = session.scalars(
        select(CourierDispatch.status)
        .where(CourierDispatch.order_id == order_id)
        .order_by(CourierDispatch.id.desc())
        .limit(1)
    ).first()
    return last is DispatchStatus.FAILED


def other_active_dispatches(
    session: Session, order_id: uuid.UUID, but: uuid.UUID
) -> list[CourierDispatch]:
    """The order's dispatches still on besides ``but``, locked."""
    others = _active(order_id).where(CourierDispatch.id != but).order_by(CourierDispatch.id)
    return list(session.scalars(others.with_for_update()))


def _active_dispatch(
    session: Session, order_id: uuid.UUID, *, for_update: bool = False
) -> CourierDispatch | None:
    query = _active(order_id)
    return session.scalars(query.with_for_update() if for_update else query).first()


def _active(order_id: uuid.UUID) -> Select[CourierDispatch]:
    return select(CourierDispatch).where(
        CourierDispatch.order_id == order_id, CourierDispatch.status.in_(ACTIVE)
    )
