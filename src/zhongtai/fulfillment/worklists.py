"""What the store's staff see of their work: the queue of open orders, an order's pick list
(goods, walked aisle by aisle) and its service counter's jobs (fish cleaning, alterations),
each service timed as the delivery promise timed it."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category, Product, Sku
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.fulfillment.location_facts import location_pace
from zhongtai.fulfillment.models import FulfillmentTask, MissedPromise
from zhongtai.fulfillment.picking import (
    PickGroup,
    PickLine,
    pick_list,
)
from zhongtai.fulfillment.promise import PromiseSettings
from zhongtai.fulfillment.service_counter import ServiceAsked, ServiceJob, service_jobs
from zhongtai.orders.kinds import FulfillmentType, LineKind, OrderStatus
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Order, OrderLine


def picking_list(session: Session, order_id: uuid.UUID) -> list[PickGroup]:
    """The order's goods grouped by category, for the clerk's walk through the store (its
    services are the service counter's: ``service_work``)."""
    order = get_order(session, order_id)
    rows = session.execute(
        select(OrderLine, Sku.code, Sku.name, Category.code, Category.name)
        .join(Sku, Sku.id == OrderLine.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .join(Category, Category.id == Product.category_id)
        .where(OrderLine.order_id == order.id)
    ).all()
    return pick_list(
        PickLine(
            line_id=line.id,
            sku_id=line.sku_id,
            sku_code=sku_code,
            name=sku_name,
            quantity=line.quantity,
            paid_fen=line.net_amount,
            category_code=category_code,
            category_name=category_name,
        )
        for line, sku_code, sku_name, category_code, category_name in rows
        if line.sku_id is not None
    )


def _services_asked(order: Order) -> list[ServiceAsked]:
    return [
        ServiceAsked(line.id, line.service, line.quantity, line.location_id)
        for line in order.lines
        if line.kind is LineKind.SERVICE and line.service is not None
    ]


def service_work(session: Session, order_id: uuid.UUID) -> list[ServiceJob]:
    """The services the order asks of its store (fish cleaning, alterations), for the store's
    service counter: each timed as the delivery promise timed it, to be done before packing."""
    order = get_order(session, order_id)
    asked = _services_asked(order)
    if not asked:
        return []
    return service_jobs(asked, order.store_id, location_pace(session, order.store_id))


@dataclass(frozen=True)
class QueuedOrder:
    """An order in the store's queue: the store's task on it (None until accepted), the
    services it asks of the store, each with its preparation time, and whether its delivery
    promise has already passed."""

    order: Order
    task: FulfillmentTask | None
    services: list[ServiceJob]
    promise_missed: bool = False


def store_queue(session: Session, store_id: uuid.UUID, *, limit: int = 200) -> list[QueuedOrder]:
    """The store's open work, most urgent first: orders waiting to be accepted (paid ones, and
    try-on requests, which are paid only at the till), then
    accepted and picking ones by deadline, then packed ones waiting for handover. Each shows
    the services it asks of the store, timed as the delivery promise timed them."""
    open_statuses = (
        OrderStatus.PAID,
        OrderStatus.ACCEPTED,
        OrderStatus.PICKING,
        OrderStatus.PACKED,
        OrderStatus.READY_FOR_PICKUP,
    )
    rows = session.execute(
        select(Order, FulfillmentTask, MissedPromise.order_id.is_not(None))
        .outerjoin(
            FulfillmentTask,
            (FulfillmentTask.order_id == Order.id) & (FulfillmentTask.location_id == store_id),
        )
        .outerjoin(MissedPromise, MissedPromise.order_id == Order.id)
        .where(
            Order.store_id == store_id,
            Order.status.in_(open_statuses)
            | (
                (Order.fulfillment_type == FulfillmentType.RESERVE_TRY)
                & (Order.status == OrderStatus.CREATED)
            ),
        )
        .order_by(FulfillmentTask.due_at.is_(None).desc(), FulfillmentTask.due_at, Order.placed_at)
        .limit(limit)
    ).all()
    asked = [(order, task, _services_asked(order), late) for order, task, late in rows]
    # The store's pace is read only when some order asks for a service: a queue of goods
    # costs no statement more than before.
    pace = location_pace(session, store_id) if any(x for _, _, x, _ in asked) else PromiseSettings()
    return [
        QueuedOrder(order, task, service_jobs(services, store_id, pace), bool(late))
        for order, task, services, late in asked
    ]


@dataclass(frozen=True)
class LateOrder:
    """A missed promise of the store, with the order's number and where it stands now."""

    missed: MissedPromise
    number: str
    status_now: OrderStatus


def missed_promises(
    session: Session,
    store_ids: Collection[uuid.UUID] | None,
    page: PageParams,
    *,
    since: datetime | None = None,
) -> tuple[list[LateOrder], str | None]:
    """The stores' orders (None: the chain's) found past their promise (since ``since``), in
    the order they were found: the list of customers to call ahead, and of what made them
    late."""
    stmt = select(MissedPromise)
    if store_ids is not None:
        stmt = stmt.where(MissedPromise.store_id.in_(store_ids))
    if since is not None:
        stmt = stmt.where(MissedPromise.detected_at >= since)
    missed, cursor = paginate(
        session, stmt, [MissedPromise.detected_at, MissedPromise.order_id], page
    )
    orders = {
        order_id: (number, status)
        for order_id, number, status in session.execute(
            select(Order.id, Order.number, Order.status).where(
                Order.id.in_([x.order_id for x in missed])
            )
        )
    }
    return [LateOrder(x, *orders[x.order_id]) for x in missed], cursor
