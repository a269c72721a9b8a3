"""The store's work on an order: accept it into the queue, pick (with substitutions and short
picks), pack, ship, and the SLA clock over all of it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category, Product, Sku
from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import record_event
from zhongtai.fulfillment.events import SlaBreached
from zhongtai.fulfillment.models import FulfillmentTask, TaskStatus
from zhongtai.fulfillment.picking import PickGroup, PickLine, Substitute, pick_list, pick_outcome
from zhongtai.fulfillment.promise import FALLBACK_SLA, TaskKind
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.inventory.models import Reservation
from zhongtai.inventory.order_holds import lock_holds_and_stock, ship_unheld, shrink_hold
from zhongtai.inventory.reservations import (
    confirm_reservation,
    get_reservation,
    in_lock_order,
    release_reservation,
)
from zhongtai.inventory.rules import Line
from zhongtai.orders.kinds import FulfillmentType, LineKind, OrderStatus
from zhongtai.orders.lifecycle import get_order, move_order
from zhongtai.orders.models import Order, OrderLine, RefundReason
from zhongtai.orders.refunds import refund_order


def _tasks(session: Session, order_id: uuid.UUID) -> list[FulfillmentTask]:
    return list(
        session.scalars(
            select(FulfillmentTask)
            .where(FulfillmentTask.order_id == order_id)
            .order_by(FulfillmentTask.location_id)
        )
    )


def accept_order(session: Session, order_id: uuid.UUID, *, now: datetime | None = None) -> Order:
    """The store takes a paid order (or a try-on request) into its queue: one task per location
    that fulfils lines of it, due when the promise says the goods are ready."""
    now = now or utcnow()
    order, moved = move_order(session, order_id, OrderStatus.ACCEPTED)
    if moved:
        due = order.promised_ready_at or now + FALLBACK_SLA[TaskKind.PACK]
        for location_id in sorted({x.location_id for x in order.lines}):
            session.add(
                FulfillmentTask(id=new_id(), order_id=order.id, location_id=location_id, due_at=due)
            )
    return order


def start_picking(session: Session, order_id: uuid.UUID, *, now: datetime | None = None) -> Order:
    now = now or utcnow()
    order, moved = move_order(session, order_id, OrderStatus.PICKING)
    if moved:
        session.execute(
            update(FulfillmentTask)
            .where(FulfillmentTask.order_id == order_id, FulfillmentTask.status == TaskStatus.OPEN)
            .values(status=TaskStatus.PICKING, started_at=now, picker=context.actor.get())
        )
    return order


def picking_list(session: Session, order_id: uuid.UUID) -> list[PickGroup]:
    """The order's goods grouped by category, for the clerk's walk through the store."""
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


@dataclass(frozen=True)
class LinePick:
    """What the picker found for one line: units picked, and maybe a substitute."""

    line_id: uuid.UUID
    picked: int
    substitute: Substitute | None = None


def _apply_picks(
    session: Session, order: Order, picks: Sequence[LinePick]
) -> tuple[int, dict[uuid.UUID, dict[uuid.UUID, int]], list[tuple[uuid.UUID, Line]]]:
    """Settle each goods line: (refund in fen, what each location keeps held, substitutes)."""
    by_line = {p.line_id: p for p in picks}
    goods = {x.id: x for x in order.lines if x.kind is LineKind.GOODS}
    unknown = set(by_line) - set(goods)
    if unknown:
        raise InvalidInput.field(
            "picks", f"not goods lines of this order: {sorted(map(str, unknown))}"
        )
    refund = 0
    keep: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
    substitutes: list[tuple[uuid.UUID, Line]] = []
    for index, line in enumerate(order.lines):
        if line.kind is not LineKind.GOODS or line.sku_id is None:
            continue
        pick = by_line.get(line.id, LinePick(line.id, line.quantity))
        result = pick_outcome(
            PickLine(line.id, line.sku_id, "", "", line.quantity, line.net_amount),
            pick.picked,
            pick.substitute,
            order.substitution,
        )
        if not result.ok:
            raise InvalidInput.field(f"picks[{index}]", result.problem or "invalid pick")
        line.picked_quantity = result.picked
        if pick.substitute is not None and result.substituted:
            line.substitute_sku_id = pick.substitute.sku_id
            line.substitute_quantity = result.substituted
            substitutes.append((line.location_id, Line(pick.substitute.sku_id, result.substituted)))
        line.short_refund = result.refund_fen
        refund += result.refund_fen
        keep.setdefault(line.location_id, {})[line.sku_id] = result.picked
    return refund, keep, substitutes


def pack_order(
    session: Session,
    order_id: uuid.UUID,
    *,
    picks: Sequence[LinePick] = (),
    packages: int = 1,
    providers: Mapping[str, PaymentProvider],
    now: datetime | None = None,
) -> Order:
    """Close the pick and pack the goods. Lines not named were picked in full. Short picks
    give their stock hold back and are refunded at once (to the original tenders); a similar
    substitute, when the customer allows it, leaves the shelf without a hold."""
    now = now or utcnow()
    if packages < 1:
        raise InvalidInput.field("packages", "at least one bag or box")
    order = get_order(session, order_id, for_update=True)
    if order.status is OrderStatus.PACKED:
        return order
    refund, keep, substitutes = _apply_picks(session, order, picks)
    order, moved = move_order(session, order_id, OrderStatus.PACKED)
    if not moved:
        return order
    holds = [get_reservation(session, r) for r in in_lock_order(session, order.reservation_ids)]
    by_location: dict[uuid.UUID, list[Line]] = {}
    for location_id, line in substitutes:
        by_location.setdefault(location_id, []).append(line)
    if by_location:  # frees some rows and takes others: all locked first, in lock order
        lock_holds_and_stock(
            session, [x.id for x in holds], _rows_changed(holds, keep, by_location)
        )
    for reservation in holds:
        shrink_hold(session, reservation.id, keep.get(reservation.location_id, {}))
    for location_id, lines in by_location.items():
        ship_unheld(session, location_id, lines, reference=f"order:{order.id}:substitutes")
    if refund and order.paid_amount:
        refund_order(session, order, refund, RefundReason.SHORT_PICK, providers=providers)
    session.execute(
        update(FulfillmentTask)
        .where(
            FulfillmentTask.order_id == order_id,
            FulfillmentTask.status.in_((TaskStatus.OPEN, TaskStatus.PICKING)),
        )
        .values(status=TaskStatus.PACKED, packed_at=now, packages=packages)
    )
    return order


def _rows_changed(
    holds: Sequence[Reservation],
    keep: Mapping[uuid.UUID, Mapping[uuid.UUID, int]],
    substitutes: Mapping[uuid.UUID, Sequence[Line]],
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """location -> SKUs whose balance rows a pack changes: held lines kept below their hold,
    and the substitutes."""
    rows: dict[uuid.UUID, set[uuid.UUID]] = {}
    for reservation in holds:
        kept = keep.get(reservation.location_id, {})
        rows.setdefault(reservation.location_id, set()).update(
            x.sku_id for x in reservation.lines if x.sku_id in kept and kept[x.sku_id] < x.quantity
        )
    for location_id, lines in substitutes.items():
        rows.setdefault(location_id, set()).update(x.sku_id for x in lines)
    return rows


def hand_over_goods(session: Session, order: Order, *, now: datetime | None = None) -> None:
    """The goods left the store (customer, rider or carrier): the holds become shipments.
    Lines picked to zero hold nothing and ship nothing."""
    now = now or utcnow()
    for reservation_id in in_lock_order(session, order.reservation_ids):
        reservation = get_reservation(session, reservation_id)
        if reservation.lines:
            confirm_reservation(session, reservation.id)
        else:  # everything was short-picked: nothing leaves, the empty hold just ends
            release_reservation(session, reservation.id)
    session.execute(
        update(FulfillmentTask)
        .where(FulfillmentTask.order_id == order.id, FulfillmentTask.status == TaskStatus.PACKED)
        .values(status=TaskStatus.HANDED_OVER, handed_over_at=now)
    )


def ship_order(
    session: Session, order_id: uuid.UUID, *, carrier: str, tracking_number: str
) -> Order:
    """A parcel left with the carrier: stock ships, the order is ``shipped``."""
    order = get_order(session, order_id, for_update=True)
    if order.fulfillment_type is not FulfillmentType.SHIP:
        raise InvalidInput.field("order_id", f"order {order.number} is not a parcel order")
    order, moved = move_order(
        session,
        order_id,
        OrderStatus.SHIPPED,
        note=f"{carrier} {tracking_number}",
    )
    if moved:
        hand_over_goods(session, order)
    return order


def confirm_delivery(session: Session, order_id: uuid.UUID) -> Order:
    """The carrier (or the customer) confirmed a parcel arrived."""
    order, _ = move_order(session, order_id, OrderStatus.COMPLETED, completed_at=utcnow())
    return order


def flag_sla_breaches(session: Session, *, now: datetime | None = None, batch: int = 500) -> int:
    """Flag unfinished tasks past their deadline, once each, with a ``fulfillment.sla_breached``
    event for the store's queue and the HQ dashboards."""
    now = now or utcnow()
    late = session.scalars(
        select(FulfillmentTask)
        .where(
            FulfillmentTask.sla_breached_at.is_(None),
            FulfillmentTask.status.in_((TaskStatus.OPEN, TaskStatus.PICKING)),
            FulfillmentTask.due_at < now,
        )
        .order_by(FulfillmentTask.due_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
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


def store_queue(
    session: Session, store_id: uuid.UUID, *, limit: int = 200
) -> list[tuple[Order, FulfillmentTask | None]]:
    """The store's open work, most urgent first: orders waiting to be accepted (paid ones, and
    try-on requests, which are paid only at the till), then
    accepted and picking ones by deadline, then packed ones waiting for handover."""
    open_statuses = (
        OrderStatus.PAID,
        OrderStatus.ACCEPTED,
        OrderStatus.PICKING,
        OrderStatus.PACKED,
        OrderStatus.READY_FOR_PICKUP,
    )
    rows = session.execute(
        select(Order, FulfillmentTask)
        .outerjoin(
            FulfillmentTask,
            (FulfillmentTask.order_id == Order.id) & (FulfillmentTask.location_id == store_id),
        )
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
    return [(order, task) for order, task in rows]
