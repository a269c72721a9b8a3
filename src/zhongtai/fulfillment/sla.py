"""The store's SLA clock: unfinished work past its deadline is flagged once, with a
``fulfillment.sla_breached`` event for the store's queue and the HQ dashboards."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.outbox import record_event
from zhongtai.fulfillment.events import SlaBreached
from zhongtai.fulfillment.models import FulfillmentTask, TaskStatus
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.models import Order


def flag_sla_breaches(session: Session, *, now: datetime | None = None, batch: int = 500) -> int:
    """Flag unfinished tasks past their deadline, once each, with a ``fulfillment.sla_breached``
    event for the store's queue and the HQ dashboards. A task of an order no longer at work
    (cancelled while the store picked it) is late for nobody: it is closed, not reported."""
    now = now or utcnow()
    unflagged = (
        FulfillmentTask.sla_breached_at.is_(None),
        FulfillmentTask.status.in_((TaskStatus.OPEN, TaskStatus.PICKING)),
        FulfillmentTask.due_at < now,
    )
    session.execute(
        update(FulfillmentTask)
        .where(*unflagged, _order_in(OrderStatus.CANCELLED))
        .values(status=TaskStatus.CANCELLED)
        .execution_options(synchronize_session=False)
    )
    late = session.scalars(
        select(FulfillmentTask)
        .where(*unflagged, _order_in(OrderStatus.ACCEPTED, OrderStatus.PICKING))
        .order_by(FulfillmentTask.due_at)
        .limit(batch)
        .with_for_update(skip_locked=True, of=FulfillmentTask)
    ).all()
    for task in late:
        task.sla_breached_at = now
        record_event(
            session,
            SlaBreached(
                task_id=task.id,
                order_id=task.order_id,
                store_id=task.location_id,
                task_status=task.status.value,
                due_at=task.due_at,
                detected_at=now,
            ),
            aggregate_type="order",
            aggregate_id=task.order_id,
            store_id=task.location_id,
        )
    return len(late)


def _order_in(*statuses: OrderStatus) -> ColumnElement[bool]:
    """The task's order is in one of these statuses (read, not locked: the order's steps lock
    it, and a sweep must never wait for a clerk)."""
    return exists().where(Order.id == FulfillmentTask.order_id, Order.status.in_(statuses))
