"""Moving an order through its state machine: one conditional statement per step, a timeline
entry and an event for each."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, func, select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.db import insert_row
from zhongtai.core.errors import NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import record_event
from zhongtai.inventory.rules import Step
from zhongtai.orders.errors import IllegalOrderStep
from zhongtai.orders.events import MOVED_EVENTS
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.models import Order, OrderStatusChange
from zhongtai.orders.rules import illegal_step_message, order_step

#: How often a step re-reads the order after losing a race to another step before giving up.
_RACE_RETRIES = 3


def get_order(session: Session, order_id: uuid.UUID, *, for_update: bool = False) -> Order:
    stmt = select(Order).where(Order.id == order_id)
    if for_update:
        # Re-read under the lock: an order already in the session may be stale.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    order = session.scalars(stmt).one_or_none()
    if order is None:
        raise NotFound(f"No order {order_id}.", order_id=str(order_id))
    return order


def order_facts(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "number": order.number,
        "channel": order.channel.value,
        "fulfillment_type": order.fulfillment_type.value,
        "store_id": order.store_id,
        "member_id": order.member_id,
        "status": order.status.value,
        "total": order.total,
        "currency": order.currency,
    }


def note_status(
    session: Session,
    order: Order,
    previous: OrderStatus | None,
    *,
    note: str | None = None,
) -> None:
    """Add the step to the order's timeline, INSERTed at once (no unit of work; a new order
    is flushed first, see :func:`zhongtai.core.db.insert_row`)."""
    insert_row(
        session,
        OrderStatusChange,
        {
            "id": new_id(),
            "order_id": order.id,
            "from_status": previous.value if previous else None,
            "to_status": order.status.value,
            "occurred_at": utcnow(),
            "actor": context.actor.get(),
            "note": note,
        },
    )


def move_order(
    session: Session,
    order_id: uuid.UUID,
    wanted: OrderStatus,
    *,
    note: str | None = None,
    event_fields: dict[str, Any] | None = None,
    **changes: Any,
) -> tuple[Order, bool]:
    """Move the order to ``wanted`` if its state machine allows it: (order, moved).

    The step is one conditional UPDATE on the status the order was read in, so two clerks (or
    a clerk and the payment notification) racing for the same order cannot both move it; the
    loser re-reads and gets "already there" (moved False) or a 409 naming what is allowed.
    ``changes`` are other columns set in the same statement.
    """
    for _ in range(_RACE_RETRIES):
        order = get_order(session, order_id)
        current = order.status
        step = order_step(order.fulfillment_type, current, wanted)
        if step is Step.ALREADY:
            return order, False
        if step is Step.ILLEGAL:
            raise IllegalOrderStep(
                illegal_step_message(order.fulfillment_type, current, wanted),
                order_id=str(order.id),
                order_status=current.value,
                wanted=wanted.value,
            )
        now = utcnow()
        claimed = session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == current)
            .values(status=wanted, updated_at=now, **changes)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        session.expire(order)
        if claimed:
            session.refresh(order)
            note_status(session, order, current, note=note)
            payload = MOVED_EVENTS[wanted.value](
                **order_facts(order),
                previous_status=current.value,
                occurred_at=now,
                **(event_fields or {}),
            )
            record_event(
                session,
                payload,
                aggregate_type="order",
                aggregate_id=order.id,
                store_id=order.store_id,
            )
            return order, True
    raise IllegalOrderStep(
        f"Order {order_id} keeps changing under this step; try again.", order_id=str(order_id)
    )


def entered_at(status: OrderStatus) -> ScalarSelect[datetime]:
    """When the order of the enclosing query last entered ``status``, read from its timeline
    (one index lookup per order): for sweepers timing how long orders have stood somewhere."""
    return (
        select(func.max(OrderStatusChange.occurred_at))
        .where(OrderStatusChange.order_id == Order.id, OrderStatusChange.to_status == status.value)
        .scalar_subquery()
    )
