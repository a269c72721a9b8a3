"""Orders left unpaid past their payment deadline: cancelled by `serve`'s sweeper, one order
per transaction, their stock released. An order whose cancellation fails is tried again later,
later after each failure, and does not hold up the orders behind it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.jobs import PeriodicJob
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.orders.expiry_failures import cancel_or_retry_later, not_waiting
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.models import Order
from zhongtai.orders.payments import cancel_order


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
    logged, and recorded as an :class:`~zhongtai.orders.models.ExpiryFailure`: the order is
    passed over until its ``retry_at``, and the orders behind it are cancelled meanwhile.
    """
    now = now or utcnow()
    due = session.scalars(
        select(Order.id)
        .where(Order.status == OrderStatus.CREATED, Order.payment_due_at < now, not_waiting(now))
        .order_by(Order.payment_due_at)
        .limit(1)
        .with_for_update(of=Order, skip_locked=True)  # each worker's sweeper takes another order
    ).first()
    if due is None:
        return 0
    cancel = partial(cancel_order, session, due, reason="unpaid", providers=providers)
    cancel_or_retry_later(session, due, cancel, now=now, event="order.unpaid_expiry_failed")
    return 1
