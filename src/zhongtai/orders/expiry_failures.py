"""Orders a sweeper could not cancel (a payment provider down, a bug): each is passed over
until its ``retry_at``, later after each failure, so that it does not hold up the orders
behind it. Shared by the unpaid-order and the uncollected-order sweepers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.orm import Session

from zhongtai.core.logging import get_logger
from zhongtai.orders.models import ExpiryFailure, Order

log = get_logger("zhongtai.orders")

#: After the n-th failed cancellation an order waits FIRST_RETRY * 2**(n-1), at most LAST_RETRY.
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)


def not_waiting(now: datetime) -> ColumnElement[bool]:
    """The order is not waiting to be tried again after a failed cancellation."""
    return ~exists().where(ExpiryFailure.order_id == Order.id, ExpiryFailure.retry_at > now)


def cancel_or_retry_later(
    session: Session,
    order_id: uuid.UUID,
    cancel: Callable[[], object],
    *,
    now: datetime,
    event: str,
) -> None:
    """Run ``cancel`` (the order's cancellation) in a savepoint. If it fails (a payment provider
    down, a bug), it is undone, logged as ``event`` and recorded: the order is passed over
    until its retry time, later after each failure. Once cancelled, its failures are gone."""
    try:
        with session.begin_nested():
            cancel()
    except Exception as error:  # recorded and logged, retried later (see _postpone)
        _postpone(session, order_id, error, now, event=event)
        return
    session.execute(delete(ExpiryFailure).where(ExpiryFailure.order_id == order_id))


def _postpone(
    session: Session, order_id: uuid.UUID, error: Exception, now: datetime, *, event: str
) -> None:
    failure = session.get(ExpiryFailure, order_id)
    if failure is None:
        failure = ExpiryFailure(order_id=order_id, attempts=0)
        session.add(failure)
    failure.attempts += 1
    failure.retry_at = now + retry_delay(failure.attempts)
    failure.failed_at = now
    failure.last_error = f"{type(error).__name__}: {error}"[:500]
    session.flush()
    log.error(
        event,
        order_id=str(order_id),
        attempts=failure.attempts,
        retry_at=failure.retry_at.isoformat(),
        exc_info=error,
    )


def failed_since(session: Session, since: datetime) -> int:
    """How many orders failed to cancel at ``since`` or later (each counted once)."""
    return session.scalar(select(func.count()).where(ExpiryFailure.failed_at >= since)) or 0


def retry_delay(attempts: int) -> timedelta:
    """How long an order waits after its ``attempts``-th failed cancellation."""
    delay: timedelta = FIRST_RETRY * 2 ** min(attempts - 1, 16)
    return min(delay, LAST_RETRY)
