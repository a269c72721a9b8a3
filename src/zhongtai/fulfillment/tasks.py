"""The store's work on an order: accept it into the queue, pick (with substitutions and short
picks), pack, ship, and the SLA clock over all of it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.core.ids import new_id
from zhongtai.fulfillment.models import FulfillmentTask, TaskStatus
from zhongtai.fulfillment.picking import (
    LinePick,
    PickLine,
    PickResult,
    SkuFacts,
    pick_outcome,
    picks_by_line,
    substitute_problem,
)
from zhongtai.fulfillment.promise import FALLBACK_SLA, TaskKind
from zhongtai.fulfillment.substitutes import priced, sku_facts, substitute_prices
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.inventory.models import Reservation, StockBalance
from zhongtai.inventory.order_holds import lock_holds_and_stock, ship_unheld, shrink_hold
from zhongtai.inventory.reservations import (
    confirm_reservation,
    get_reservation,
    in_lock_order,
    release_reservation,
)
from zhongtai.inventory.rules import Line
from zhongtai.orders.errors import IllegalOrderStep
from zhongtai.orders.kinds import FulfillmentType, LineKind, OrderStatus, SubstitutionPreference
from zhongtai.orders.lifecycle import get_order, move_order
from zhongtai.orders.models import Order, OrderLine, RefundReason
from zhongtai.orders.refunds import refund_order
from zhongtai.orders.rules import Step, order_step


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


def _apply_picks(
    session: Session, order: Order, picks: Sequence[LinePick], now: datetime
) -> tuple[int, dict[uuid.UUID, dict[uuid.UUID, int]], dict[uuid.UUID, dict[uuid.UUID, int]]]:
    """Settle each goods line: (refund in fen, what each location keeps held, the substitutes
    each location takes off its shelf, by SKU)."""
    by_line, goods = _named_goods(order, picks)
    offered = {p.substitute.sku_id for _, p in by_line.values() if p.substitute is not None}
    facts = sku_facts(session, {sku_id for _, sku_id in goods} | offered)
    prices = substitute_prices(session, order, offered & set(facts), now)
    refund = 0
    keep: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
    substitutes: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
    for line, sku_id in goods:
        index, pick = by_line.get(line.id, (None, LinePick(line.id, line.quantity)))
        result = _settle_line(
            line, sku_id, pick, f"picks[{index}]", order.substitution, facts, prices
        )
        if (substitute := pick.substitute) is not None and result.substituted:
            taken = substitutes.setdefault(line.location_id, {})
            taken[substitute.sku_id] = taken.get(substitute.sku_id, 0) + result.substituted
        refund += result.refund_fen
        # Lines of one SKU (a gift beside the bought units) share its hold: keep their sum.
        kept = keep.setdefault(line.location_id, {})
        kept[sku_id] = kept.get(sku_id, 0) + result.picked
    if not substitutes and not any(q for kept in keep.values() for q in kept.values()):
        raise Conflict(
            f"Nothing of order {order.number} was picked: there is no parcel to pack. "
            "Cancel the order instead; that refunds all of it.",
            order_id=str(order.id),
        )
    return refund, keep, substitutes


def _named_goods(
    order: Order, picks: Sequence[LinePick]
) -> tuple[dict[uuid.UUID, tuple[int, LinePick]], list[tuple[OrderLine, uuid.UUID]]]:
    """The picks by line, and the order's goods lines with their SKUs; a pick of any other
    line is refused."""
    by_line = picks_by_line(picks)
    goods = [
        (x, x.sku_id) for x in order.lines if x.kind is LineKind.GOODS and x.sku_id is not None
    ]
    unknown = set(by_line) - {x.id for x, _ in goods}
    if unknown:
        raise InvalidInput.field(
            "picks", f"not goods lines of this order: {sorted(map(str, unknown))}"
        )
    return by_line, goods


def _settle_line(
    line: OrderLine,
    sku_id: uuid.UUID,
    pick: LinePick,
    field: str,
    preference: SubstitutionPreference,
    facts: Mapping[uuid.UUID, SkuFacts],
    prices: dict[uuid.UUID, tuple[int, int]],
) -> PickResult:
    """Check one line's pick (422 naming its place in the request) and record it on the line."""
    substitute = None
    if pick.substitute is not None:
        problem = substitute_problem(facts[sku_id], facts.get(pick.substitute.sku_id))
        if problem is not None:
            raise InvalidInput.field(f"{field}.substitute.sku_id", problem)
        substitute = priced(pick.substitute, prices)
    paid = PickLine(line.id, sku_id, "", "", line.quantity, line.net_amount)
    result = pick_outcome(paid, pick.picked, substitute, preference)
    if not result.ok:
        raise InvalidInput.field(field, result.problem or "invalid pick")
    line.picked_quantity = result.picked
    if pick.substitute is not None and result.substituted:
        line.substitute_sku_id = pick.substitute.sku_id
        line.substitute_quantity = result.substituted
    line.short_refund = result.refund_fen
    return result


def _ensure_packed_alike(order: Order, picks: Sequence[LinePick]) -> None:
    """A pack sent again must be the same pack: one with other picks would otherwise answer
    200 while its short picks and substitutes were never applied."""
    by_line, goods = _named_goods(order, picks)
    for line, _ in goods:
        _, pick = by_line.get(line.id, (None, LinePick(line.id, line.quantity)))
        sub = pick.substitute
        asked = (pick.picked, sub.sku_id if sub else None, sub.quantity if sub else None)
        if asked != (line.picked_quantity, line.substitute_sku_id, line.substitute_quantity):
            raise Conflict(
                f"Order {order.number} is already packed with other picks; a pack is not redone.",
                order_id=str(order.id),
            )


def _ensure_on_shelf(
    session: Session, location_id: uuid.UUID, taken: Mapping[uuid.UUID, int]
) -> None:
    """A substitute comes out of the store's free stock: never units held for other orders,
    never below zero. The balance rows are locked (see ``lock_holds_and_stock``)."""
    rows = session.execute(
        select(StockBalance.sku_id, StockBalance.on_hand - StockBalance.reserved).where(
            StockBalance.location_id == location_id, StockBalance.sku_id.in_(set(taken))
        )
    )
    free = {sku_id: quantity for sku_id, quantity in rows}
    for sku_id, quantity in sorted(taken.items()):
        available = max(free.get(sku_id, 0), 0)
        if available < quantity:
            raise Conflict(
                f"Only {available} of substitute SKU {sku_id} are free in this store, not "
                f"{quantity}: pick another substitute or short-pick.",
                sku_id=str(sku_id),
            )


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
        _ensure_packed_alike(order, picks)
        return order
    if order_step(order.fulfillment_type, order.status, OrderStatus.PACKED) is not Step.APPLY:
        # The order's state first: picks for an order not being picked are not the question.
        move_order(session, order_id, OrderStatus.PACKED)
    refund, keep, substitutes = _apply_picks(session, order, picks, now)
    order, moved = move_order(session, order_id, OrderStatus.PACKED)
    if not moved:
        return order
    holds = [get_reservation(session, r) for r in in_lock_order(session, order.reservation_ids)]
    by_location = {
        location_id: [Line(sku_id, q) for sku_id, q in taken.items()]
        for location_id, taken in substitutes.items()
    }
    if by_location:  # frees some rows and takes others: all locked first, in lock order
        lock_holds_and_stock(
            session, [x.id for x in holds], _rows_changed(holds, keep, by_location)
        )
    for reservation in holds:
        shrink_hold(session, reservation.id, keep.get(reservation.location_id, {}))
    for location_id, lines in by_location.items():
        _ensure_on_shelf(session, location_id, substitutes[location_id])
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


def end_tasks(session: Session, order_id: uuid.UUID) -> None:
    """The store's work on a cancelled order ends with it (its queue shows open orders only;
    this keeps the tasks' own record true)."""
    session.execute(
        update(FulfillmentTask)
        .where(
            FulfillmentTask.order_id == order_id,
            FulfillmentTask.status.in_((TaskStatus.OPEN, TaskStatus.PICKING, TaskStatus.PACKED)),
        )
        .values(status=TaskStatus.CANCELLED)
        .execution_options(synchronize_session=False)
    )


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
    # Another type never passes through shipped: the transition table answers 409 saying so.
    order, moved = move_order(
        session,
        order_id,
        OrderStatus.SHIPPED,
        note=f"{carrier} {tracking_number}",
    )
    if moved:
        hand_over_goods(session, order)
    return order


def confirm_delivery(session: Session, order_id: uuid.UUID, *, note: str | None = None) -> Order:
    """The carrier (or the customer) confirmed a parcel arrived. Only a parcel: a pickup order
    is completed by its code at the counter, a delivery by the rider's callback, each shipping
    its stock on the way. ``note`` goes on the order's timeline."""
    order = get_order(session, order_id, for_update=True)
    if order.fulfillment_type is not FulfillmentType.SHIP:
        raise IllegalOrderStep(
            f"Order {order.number} is a {order.fulfillment_type.value} order, not a parcel: "
            "only a parcel is confirmed delivered here.",
            order_id=str(order.id),
            order_status=order.status.value,
            wanted=OrderStatus.COMPLETED.value,
        )
    order, _ = move_order(
        session, order_id, OrderStatus.COMPLETED, note=note, completed_at=utcnow()
    )
    return order
