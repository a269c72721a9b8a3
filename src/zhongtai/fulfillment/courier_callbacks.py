"""A rider's progress as the courier platform reports it, in signed status callbacks (or, for
a callback that never came, as :mod:`zhongtai.fulfillment.courier_watch` reads it from the
platform): picked up ships the stock and sends the order out, delivered completes it. Each step
is applied once and only forward; the moment it reports is kept between the booking and now.
Booking and calling riders off: :mod:`zhongtai.fulfillment.courier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.logging import get_logger
from zhongtai.core.outbox import record_event
from zhongtai.core.text import has_control_characters
from zhongtai.fulfillment.courier import call_off_dispatch, other_active_dispatches
from zhongtai.fulfillment.events import CourierUpdated
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus, FulfillmentTask
from zhongtai.fulfillment.tasks import hand_over_goods
from zhongtai.integrations.couriers.provider import CourierService, CourierStatus, CourierUpdate
from zhongtai.integrations.providers import Providers
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.lifecycle import get_order, move_order
from zhongtai.orders.models import Order

log = get_logger("zhongtai.fulfillment")

#: The highest sequence a dispatch keeps (a 32-bit column on PostgreSQL).
_MAX_SEQUENCE = 2**31 - 1
_FINAL = (DispatchStatus.DELIVERED, DispatchStatus.FAILED)
#: The steps a platform's callback may take a dispatch to, by where it is: only forward. Steps
#: may be skipped (a callback lost or still on its way: "delivered" implies the pickup);
#: delivered and failed end it. A rider called off is news again only with the parcel.
_NEXT_STEPS: dict[DispatchStatus, frozenset[CourierStatus]] = {
    DispatchStatus.REQUESTED: frozenset(CourierStatus),
    DispatchStatus.ASSIGNED: frozenset(CourierStatus) - {CourierStatus.ASSIGNED},
    DispatchStatus.ARRIVED_AT_STORE: frozenset(
        {CourierStatus.PICKED_UP, CourierStatus.DELIVERED, CourierStatus.FAILED}
    ),
    DispatchStatus.PICKED_UP: frozenset({CourierStatus.DELIVERED, CourierStatus.FAILED}),
    DispatchStatus.DELIVERED: frozenset(),
    DispatchStatus.FAILED: frozenset(),
    DispatchStatus.CANCELLED: frozenset(
        {CourierStatus.PICKED_UP, CourierStatus.DELIVERED, CourierStatus.FAILED}
    ),
}


def apply_courier_callback(
    session: Session,
    courier: CourierService,
    headers: Mapping[str, str],
    body: bytes,
    *,
    couriers: Providers | None = None,
) -> CourierDispatch:
    """Verify a signed status callback and apply it once (:func:`apply_courier_update`)."""
    update = courier.parse_callback(headers, body)
    return apply_courier_update(session, courier, update, couriers=couriers)


def apply_courier_update(
    session: Session,
    courier: CourierService,
    update: CourierUpdate,
    *,
    couriers: Providers | None = None,
) -> CourierDispatch:
    """Apply a platform's step once, as its callback says it: picked up ships the stock and
    sends the order out; delivered completes it. A stale one -- repeated, older than the last
    applied, or a step that is not forward of where the dispatch is (an earlier step, anything
    after it ended) -- is acknowledged and changes nothing. The moment it reports is kept
    between the booking and now.

    A rider called off who collects the parcel anyway has it: the order goes out with her, and a
    rider booked since in her place is called off (at her platform, among ``couriers``; by
    default ``courier``'s own)."""
    _check_update(update)
    of_ref = select(CourierDispatch).where(
        CourierDispatch.provider == courier.name,
        CourierDispatch.courier_ref == update.courier_ref,
    )
    found = session.scalars(of_ref).one_or_none()
    if found is None:
        raise NotFound(f"No dispatch {update.courier_ref} of {courier.name}.")
    # The order's row first, then the dispatch's, as cancelling takes them.
    order = get_order(session, found.order_id, for_update=True)
    dispatch = session.scalars(
        of_ref.with_for_update().execution_options(populate_existing=True)
    ).one()
    if update.sequence <= dispatch.last_sequence:
        log.info("courier.callback_stale", dispatch_id=str(dispatch.id), seq=update.sequence)
        return dispatch
    if update.status not in _NEXT_STEPS[dispatch.status]:
        _out_of_step(dispatch, update)
        return dispatch
    dispatch.last_sequence = update.sequence
    if update.rider_name or update.rider_phone:
        dispatch.rider = {"name": update.rider_name, "phone": update.rider_phone}
    if order.status is OrderStatus.CANCELLED:
        _after_cancellation(dispatch, order, update.status)
        return dispatch
    occurred_at = _moment_kept(session, dispatch, update)
    called_off = dispatch.status is DispatchStatus.CANCELLED
    dispatch.status = DispatchStatus(update.status.value)
    if update.status in (CourierStatus.PICKED_UP, CourierStatus.DELIVERED):
        if called_off:
            own = Providers(couriers={courier.name: courier})
            _call_off_the_next(session, order, dispatch, couriers or own)
        _out_for_delivery(session, order, occurred_at)
    if update.status is CourierStatus.DELIVERED:
        dispatch.delivered_at = occurred_at
        move_order(
            session,
            order.id,
            OrderStatus.COMPLETED,
            note="delivered by rider",
            completed_at=occurred_at,
        )
    record_event(
        session,
        CourierUpdated(
            dispatch_id=dispatch.id,
            order_id=order.id,
            store_id=order.store_id,
            provider=courier.name,
            status=update.status.value,
            rider_name=update.rider_name,
            occurred_at=occurred_at,
            reported_at=as_utc(update.occurred_at),
        ),
        aggregate_type="order",
        aggregate_id=order.id,
        store_id=order.store_id,
    )
    return dispatch


def _call_off_the_next(
    session: Session, order: Order, collected: CourierDispatch, couriers: Providers
) -> None:
    """The parcel left with a rider who had been called off: the riders booked in her place
    would come for nothing. Each is called off (logged); one the platform will not call off
    (already on the way with nothing to carry) is logged for the store."""
    for other in other_active_dispatches(session, order.id, but=collected.id):
        try:
            call_off_dispatch(order, other, couriers.courier(other.provider))
        except (Conflict, NotFound) as refused:
            log.warning(
                "courier.next_rider_not_called_off",
                dispatch_id=str(other.id),
                order_id=str(order.id),
                why=str(refused),
            )
            continue
        log.warning(
            "courier.parcel_taken_by_rider_called_off",
            dispatch_id=str(collected.id),
            called_off_dispatch_id=str(other.id),
            order_id=str(order.id),
        )


def _out_of_step(dispatch: CourierDispatch, update: CourierUpdate) -> None:
    """A newer callback whose step is not forward of the dispatch's is stale all the same: its
    number takes nothing either, so a genuine step numbered below it still applies. After the
    delivery ended it contradicts the end (a parcel failed after delivery, collected by a rider
    who gave up): logged for the store to look into, the recorded end stands."""
    facts = {
        "dispatch_id": str(dispatch.id),
        "seq": update.sequence,
        "status": update.status.value,
        "dispatch_status": dispatch.status.value,
    }
    if dispatch.status in _FINAL:
        log.warning("courier.callback_after_the_end", **facts)
    else:
        log.info("courier.callback_out_of_step", **facts)


def _moment_kept(session: Session, dispatch: CourierDispatch, update: CourierUpdate) -> datetime:
    """When a step happened, as the platform says, kept between when it can have happened --
    no earlier than the booking and the parcel's handover, no later than now -- so that no
    order completes in the future and no delivery takes a negative time. A moment moved is
    logged with what the platform claimed (a platform clock that runs wrong)."""
    claimed = as_utc(update.occurred_at)
    handed_over = session.scalar(
        select(func.max(FulfillmentTask.handed_over_at)).where(
            FulfillmentTask.order_id == dispatch.order_id
        )
    )
    earliest = max(as_utc(dispatch.created_at), as_utc(handed_over or dispatch.created_at))
    kept = min(max(claimed, earliest), utcnow())
    if kept != claimed:
        log.warning(
            "courier.moment_out_of_range",
            dispatch_id=str(dispatch.id),
            seq=update.sequence,
            claimed=claimed.isoformat(),
            kept=kept.isoformat(),
        )
    return kept


def _check_update(update: CourierUpdate) -> None:
    """Refuse, naming the field, what a signed callback may still get wrong and the database
    would not take: a sequence past what a dispatch keeps (it would also make every later
    callback look stale), a moment without a time zone, text with NUL or control characters."""
    if not 1 <= update.sequence <= _MAX_SEQUENCE:
        raise InvalidInput.field("sequence", f"from 1 to {_MAX_SEQUENCE}")
    if update.occurred_at.utcoffset() is None:
        raise InvalidInput.field("occurred_at", "give a time zone offset, e.g. Z or +08:00")
    if not update.courier_ref or len(update.courier_ref) > 128:
        raise InvalidInput.field("courier_ref", "1 to 128 characters")
    for field, text in (
        ("courier_ref", update.courier_ref),
        ("rider_name", update.rider_name),
        ("rider_phone", update.rider_phone),
    ):
        if text is not None and has_control_characters(text):
            raise InvalidInput.field(field, "must not contain control characters (NUL, ...)")


def _after_cancellation(dispatch: CourierDispatch, order: Order, status: CourierStatus) -> None:
    """A callback for a cancelled order is acknowledged (the platform would retry a refusal
    forever) and moves no order. Progress up to the store changes nothing: the rider was
    called off. A parcel collected anyway is recorded and logged for the store to get back."""
    if status in (CourierStatus.ASSIGNED, CourierStatus.ARRIVED_AT_STORE):
        log.info("courier.callback_after_call_off", dispatch_id=str(dispatch.id), status=status)
        return
    dispatch.status = DispatchStatus(status.value)
    log.warning(
        "courier.parcel_of_cancelled_order",
        dispatch_id=str(dispatch.id),
        order_id=str(order.id),
        status=status,
    )


def _out_for_delivery(session: Session, order: Order, at: datetime) -> None:
    """The parcel left with the rider at ``at`` (a 'delivered' arriving before 'picked up'
    implies it, at the latest when delivered)."""
    order, moved = move_order(
        session, order.id, OrderStatus.OUT_FOR_DELIVERY, note="rider collected"
    )
    if moved:
        hand_over_goods(session, order, now=at)
