"""The courier watch: `serve` asks the platform after a booked rider's job that has gone quiet,
catches up on a step whose callback never came, and books a rider again in place of a job the
platform dropped without a word back.

A platform says nothing when it ends a job itself, or when it took a call-off whose transaction
of ours was then lost (see :mod:`zhongtai.fulfillment.courier`): the dispatch still looks booked,
and the packed order waits for a rider who never comes, until someone books or cancels again.
And a platform that gives up resending a callback leaves an order packed while its parcel is on
the way, or out for delivery long after the customer has it. The watch closes both gaps without
waiting for a person: a dispatch not yet ended whose row has not changed for ``quiet_for`` (no
callback, no earlier look) is asked after.

- A step the platform reports that we never applied (its sequence past the dispatch's) is
  applied as its callback would have been, at the moment the platform gives; the callback, if
  it ever comes, is then stale.
- A job gone before the parcel left ends the dispatch, books a new rider told to call back
  where the first was, and records ``fulfillment.courier_job_lost``. A job the platform no
  longer knows once its rider has the parcel cannot be booked again: the store is told once
  (``fulfillment.parcel_unaccounted``) to call the platform or the rider.
- Otherwise the job is left to its callbacks (``checked_at`` set, so it is asked again only
  after another quiet spell).

One dispatch per transaction, locking the order's row, then the dispatch's, as booking and
callbacks do: watches in several processes, a callback and a store booking again at the same
moment queue one behind the other, and whoever comes second finds the dispatch changed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import DomainError
from zhongtai.core.jobs import PeriodicJob
from zhongtai.core.logging import get_logger
from zhongtai.core.outbox import record_event
from zhongtai.fulfillment.courier import (
    ACTIVE,
    BEFORE_PICKUP,
    dispatch_courier,
    ended_at_the_platform,
)
from zhongtai.fulfillment.courier_callbacks import apply_courier_update
from zhongtai.fulfillment.events import CourierJobLost, ParcelUnaccounted
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus
from zhongtai.integrations.couriers.provider import CourierJob, CourierService
from zhongtai.integrations.providers import Providers
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Order

log = get_logger("zhongtai.fulfillment")


def courier_watch(every_seconds: float, couriers: Providers, quiet_minutes: float) -> PeriodicJob:
    """The housekeeping job asking after quiet rider jobs, one dispatch per transaction (off
    when ``quiet_minutes`` is 0)."""
    quiet_for = timedelta(minutes=quiet_minutes)
    return PeriodicJob(
        "courier-watch",
        every_seconds if quiet_minutes > 0 else 0,
        partial(look_after_a_quiet_job, couriers=couriers, quiet_for=quiet_for),
        chunk=1,
    )


def look_after_a_quiet_job(
    session: Session, *, couriers: Providers, quiet_for: timedelta, now: datetime | None = None
) -> int:
    """Ask after the dispatch quiet longest, if one has been quiet for ``quiet_for``; how many
    it looked after (0 or 1: the watch calls again, a transaction each time, while it finds one).
    """
    now = now or utcnow()
    since = now - quiet_for
    quiet = session.execute(
        select(CourierDispatch.id, CourierDispatch.order_id)
        .where(CourierDispatch.status.in_(ACTIVE), CourierDispatch.updated_at < since)
        .order_by(CourierDispatch.updated_at)
        .limit(1)
    ).first()
    if quiet is None:
        return 0
    order = get_order(session, quiet.order_id, for_update=True)
    dispatch = session.scalars(
        select(CourierDispatch)
        .where(CourierDispatch.id == quiet.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if dispatch.status not in ACTIVE or dispatch.updated_at >= since:
        return 1  # it moved while we waited for its order: a callback, a booking, another watch
    try:
        courier = couriers.courier(dispatch.provider)
        job = courier.job(dispatch.courier_ref) if dispatch.courier_ref else None
    except Exception:  # the platform down or no longer configured: asked again next quiet spell
        log.exception("courier.watch_failed", dispatch_id=str(dispatch.id), order_id=str(order.id))
        dispatch.checked_at = now
        return 1
    _catch_up(session, dispatch, job, courier, couriers)
    gone = job is None or job.cancelled
    if not gone or dispatch.status not in BEFORE_PICKUP:
        if gone and dispatch.status is DispatchStatus.PICKED_UP:
            _parcel_unaccounted(session, order, dispatch, now)
        dispatch.checked_at = now
        return 1
    ended_at_the_platform(order, dispatch)
    rebooked = _book_again(session, order, dispatch, courier)
    record_event(
        session,
        CourierJobLost(
            dispatch_id=dispatch.id,
            order_id=order.id,
            store_id=order.store_id,
            provider=dispatch.provider,
            courier_ref=dispatch.courier_ref,
            rebooked_dispatch_id=rebooked,
            detected_at=now,
        ),
        aggregate_type="order",
        aggregate_id=order.id,
        store_id=order.store_id,
    )
    return 1


def _parcel_unaccounted(
    session: Session, order: Order, dispatch: CourierDispatch, now: datetime
) -> None:
    """The platform forgot the job while its rider has the parcel: announced to the store
    once; later quiet spells ask again (the job may come back) without saying it again."""
    if dispatch.parcel_unaccounted_at is not None:
        return
    dispatch.parcel_unaccounted_at = now
    log.warning(
        "courier.job_gone_with_parcel",
        dispatch_id=str(dispatch.id),
        order_id=str(order.id),
        courier_ref=dispatch.courier_ref,
    )
    record_event(
        session,
        ParcelUnaccounted(
            dispatch_id=dispatch.id,
            order_id=order.id,
            store_id=order.store_id,
            provider=dispatch.provider,
            courier_ref=dispatch.courier_ref,
            rider=dispatch.rider,
            detected_at=now,
        ),
        aggregate_type="order",
        aggregate_id=order.id,
        store_id=order.store_id,
    )


def _catch_up(
    session: Session,
    dispatch: CourierDispatch,
    job: CourierJob | None,
    courier: CourierService,
    couriers: Providers,
) -> None:
    """Apply the job's latest step if its callback never came (numbered past the dispatch's
    last); a step that is not forward of the dispatch changes nothing, as its callback would
    not have. A step that cannot be applied (the platform reports what the database would not
    take) is logged and undone, and the watch goes on to the next job."""
    update = job.last_update if job is not None else None
    if (
        update is None
        or update.courier_ref != dispatch.courier_ref
        or update.sequence <= dispatch.last_sequence
    ):
        return
    before = dispatch.status
    try:
        with session.begin_nested():
            apply_courier_update(session, courier, update, couriers=couriers)
    except Exception:
        log.exception(
            "courier.catch_up_failed",
            dispatch_id=str(dispatch.id),
            order_id=str(dispatch.order_id),
            seq=update.sequence,
        )
        return
    log.warning(
        "courier.callback_caught_up",
        dispatch_id=str(dispatch.id),
        order_id=str(dispatch.order_id),
        seq=update.sequence,
        status=update.status.value,
        dispatch_status_before=before.value,
        dispatch_status=dispatch.status.value,
    )


def _book_again(
    session: Session, order: Order, lost: CourierDispatch, courier: CourierService
) -> uuid.UUID | None:
    """A rider in place of the lost job, told to call back where the first was; None when that
    address was never kept (a booking older than the watch) or the booking fails: the store
    books one, as it had to before. A booking the platform took before failing is booked again
    under the same dispatch id (it counts the order's dispatches, and the failed one was undone),
    so the store's booking finds the same rider."""
    if lost.callback_url is None:
        log.warning("courier.rebook_left_to_store", order_id=str(order.id), why="no callback url")
        return None
    try:
        with session.begin_nested():
            return dispatch_courier(
                session, order.id, courier=courier, callback_url=lost.callback_url
            ).id
    except DomainError as refused:
        log.warning("courier.rebook_left_to_store", order_id=str(order.id), why=str(refused))
    except Exception:  # the platform unreachable: a booking it did take is found again by id
        log.exception("courier.rebook_left_to_store", order_id=str(order.id))
    return None
