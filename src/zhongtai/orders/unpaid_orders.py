"""Orders left unpaid past their payment deadline: cancelled by `serve`'s sweeper, one order
per transaction, their stock released. An order whose cancellation fails is tried again later,
later after each failure, and does not hold up the orders behind it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.jobs import PeriodicJob
from zhongtai.core.logging import get_logger
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.models import Order, UnpaidExpiryFailure
from zhongtai.orders.payments import cancel_order

log = get_logger("zhongtai.orders")

#: After the n-th failed cancellation an order waits FIRST_RETRY * 2**(n-1), at most LAST_RETRY.
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)


def unpaid_order_sweeper(
    every_seconds: float, payments: Mapping[str, PaymentProvider]
) -> PeriodicJob:
    """The housekeeping job cancelling unpaid orders past their deadline, one per transaction."""
    return PeriodicJob(
        "unpaid-order-sweeper",
        every_seconds,
        partial(expire_unpaid_orders, providers=payments),
        chunk=1,
    )


def expire_unpaid_orders(
    session: Session,
    *,
    providers: Mapping[str, PaymentProvider],
    now: datetime | None = None,
) -> int:
    """Cancel the order longest past its payment deadline and still unpaid, releasing its stock;
    how many orders it dealt with (0 or 1). The sweeper calls it again, a transaction each time,
    while it finds one (:class:`~zhongtai.core.jobs.PeriodicJob` ``chunk``).

    One order per transaction: each order releases its rows in lock order, but two orders'
    rows in one transaction would not be in that order, and a checkout holding a row of the
    first while waiting for one of the second would deadlock with the sweeper. So a failed
    cancellation also undoes no other order's.

    A cancellation that fails (a payment provider down, a bug) is undone to its savepoint,
    logged, and recorded as an :class:`UnpaidExpiryFailure`: the order is passed over until its
    ``retry_at``, and the orders behind it are cancelled meanwhile.
    """
    now = now or utcnow()
    waiting = exists().where(
        UnpaidExpiryFailure.order_id == Order.id, UnpaidExpiryFailure.retry_at > now
    )
    due = session.scalars(
        select(Order.id)
        .where(Order.status == OrderStatus.CREATED, Order.payment_due_at < now, ~waiting)
        .order_by(Order.payment_due_at)
        .limit(1)
        .with_for_update(of=Order, skip_locked=True)  # each worker's sweeper takes another order
    ).first()
    if due is None:
        return 0
    try:
        with session.begin_nested():
            cancel_order(session, due, reason="unpaid", providers=providers)
    except Exception as error:  # recorded and logged, retried later (see _postpone)
        _postpone(session, due, error, now)
        return 1
    session.execute(delete(UnpaidExpiryFailure).where(UnpaidExpiryFailure.order_id == due))
    return 1


def _postpone(session: Session, order_id: uuid.UUID, error: Exception, now: datetime) -> None:
    failure = session.get(UnpaidExpiryFailure, order_id)
    if failure is None:
        failure = UnpaidExpiryFailure(order_id=order_id, attempts=0)
        session.add(failure)
    failure.attempts += 1
    failure.retry_at = now + retry_delay(failure.attempts)
    failure.failed_at = now
    failure.last_error = f"{type(error).__name__}: {error}"[:500]
    session.flush()
    log.error(
        "order.unpaid_expiry_failed",
        order_id=str(order_id),
        attempts=failure.attempts,
        retry_at=failure.retry_at.isoformat(),
        exc_info=error,
    )


def failed_since(session: Session, since: datetime) -> int:
    """How many unpaid orders failed to cancel at ``since`` or later (each counted once)."""
    return session.scalar(select(func.count()).where(UnpaidExpiryFailure.failed_at >= since)) or 0


def retry_delay(attempts: int) -> timedelta:
    """How long an order waits after its ``attempts``-th failed cancellation."""
    delay: timedelta = FIRST_RETRY * 2 ** min(attempts - 1, 16)
    return min(delay, LAST_RETRY)
