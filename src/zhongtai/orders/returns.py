"""Returns anywhere: goods of any order come back at any store, in part or whole; resellable
goods go back on that store's shelf, damaged ones are written off, and the money goes back to
the original tenders, never more than was paid (less a gift's worth when the goods kept no
longer earn it: ``orders.returned_gifts``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.auth.principal import Principal
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import record_event
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.inventory.checks import require_text
from zhongtai.inventory.models import MovementKind
from zhongtai.inventory.rules import Line
from zhongtai.inventory.stock import adjust_stock, record_return
from zhongtai.members import service as members
from zhongtai.orders.events import OrderReturned
from zhongtai.orders.kinds import FulfillmentType, LineKind, OrderStatus
from zhongtai.orders.lifecycle import get_order, move_order, order_facts
from zhongtai.orders.models import (
    ItemCondition,
    Order,
    OrderLine,
    OrderReturn,
    OrderReturnLine,
    RefundReason,
)
from zhongtai.orders.refunds import refund_order
from zhongtai.orders.returned_gifts import settle_gifts
from zhongtai.orders.rules import return_refund, returnable_quantity
from zhongtai.stores.models import Location, LocationKind

RETURNABLE = (OrderStatus.COMPLETED, OrderStatus.PARTIALLY_RETURNED)


@dataclass(frozen=True)
class ReturnLine:
    line_id: uuid.UUID
    quantity: int
    condition: ItemCondition = ItemCondition.RESELLABLE
    #: Units of the substitute the store sent for the line, not of the line's own SKU.
    substitute: bool = False


@dataclass(frozen=True)
class Returned:
    order_return: OrderReturn
    created: bool


def _short(line: OrderLine) -> int:
    """Units ordered but never handed over (short-picked or substituted: the substitute is
    its own goods)."""
    return 0 if line.picked_quantity is None else line.quantity - line.picked_quantity


def _handed_over_paid(line: OrderLine) -> int:
    """What the customer paid for the units of the line's own SKU she received.

    The pack keeps the picked units' share of the net, rounded down (fulfillment's pick rule):
    the rest was refunded as short or charged for a substitute, and a substitute stays with the
    customer, so its charge is no part of what these units bring back.
    """
    if line.picked_quantity is None:
        return line.net_amount - line.short_refund
    return line.net_amount * line.picked_quantity // line.quantity


def _line_refund(line: OrderLine, quantity: int) -> int:
    """The refund for ``quantity`` more units of the line: proportional to the net paid, the
    last returnable unit taking whatever is left so the line never refunds more than paid."""
    left = _handed_over_paid(line) - line.returned_refund
    if quantity == returnable_quantity(line.quantity, _short(line), line.returned_quantity):
        return left
    share = return_refund(
        line.net_amount, line.quantity, line.returned_quantity + _short(line), quantity
    )
    return min(share, left)


def _substitute_paid(line: OrderLine) -> int:
    """What the customer paid for the substitute sent for the line: the line's net less what
    the pack refunded and what the line's own picked units carry."""
    return line.net_amount - line.short_refund - _handed_over_paid(line)


def _substitute_refund(line: OrderLine, quantity: int) -> int:
    """The refund for ``quantity`` more units of the line's substitute, by the same rule as the
    line's own units: proportional, the last unit back taking whatever is left."""
    sent = line.substitute_quantity or 0
    paid = _substitute_paid(line)
    left = paid - line.substitute_returned_refund
    if quantity == sent - line.substitute_returned_quantity:
        return left
    return min(return_refund(paid, sent, line.substitute_returned_quantity, quantity), left)


def _returnable(line: OrderLine, substitute: bool) -> int:
    """Units of the line (or of its substitute) that may still come back."""
    if substitute:
        return (line.substitute_quantity or 0) - line.substitute_returned_quantity
    return returnable_quantity(line.quantity, _short(line), line.returned_quantity)


def _earlier_return(
    session: Session,
    reference: str,
    order_id: uuid.UUID,
    store_id: uuid.UUID,
    lines: Sequence[ReturnLine],
) -> OrderReturn | None:
    """The return already taken under ``reference``, if any. A reference names one return:
    used for another order, another store or other lines, it is a 409 rather than the first
    return answered as if it were this one."""
    earlier = session.scalars(
        select(OrderReturn).where(OrderReturn.reference == reference)
    ).one_or_none()
    if earlier is None:
        return None
    asked = sorted((x.line_id, x.substitute, x.quantity, x.condition) for x in lines)
    taken = sorted((x.order_line_id, x.substitute, x.quantity, x.condition) for x in earlier.lines)
    if (earlier.order_id, earlier.store_id, taken) != (order_id, store_id, asked):
        raise Conflict(
            f"Return reference {reference!r} was used for another return (another order, "
            "store or lines); give this one a reference of its own.",
            reference=reference,
        )
    return earlier


def return_goods(
    session: Session,
    order_id: uuid.UUID,
    *,
    reference: str,
    store_id: uuid.UUID,
    lines: Sequence[ReturnLine],
    reason: str | None,
    caller: Principal,
    providers: Mapping[str, PaymentProvider],
    undelivered: bool = False,
) -> Returned:
    """Take goods of an order back at ``store_id`` and refund them. Idempotent by ``reference``
    (the till's or the app's id of this return): a retry answers the first return.

    ``undelivered``: the courier reported the order's delivery failed (fulfillment knows), so
    the parcel out for delivery comes back too."""
    reference = require_text(reference, "reference", max_length=128)
    # Before anything is read: a caller of another store learns nothing of a return.
    caller.ensure_store(store_id)
    earlier = _earlier_return(session, reference, order_id, store_id, lines)
    if earlier is not None:
        return Returned(earlier, created=False)
    store = session.get(Location, store_id)
    if store is None or store.kind is not LocationKind.STORE:
        raise InvalidInput.field("store_id", f"no store {store_id}")
    _her_row_first(session, order_id)
    order = get_order(session, order_id, for_update=True)
    # A retry sent while the first was still at work (a slow provider refund) waited on the
    # order's lock and finds the first committed now: it answers that one.
    earlier = _earlier_return(session, reference, order_id, store_id, lines)
    if earlier is not None:
        return Returned(earlier, created=False)
    if order.fulfillment_type is FulfillmentType.RESERVE_TRY:
        # The try-on sold nothing: what was bought was rung up at the till, its own sale.
        raise Conflict(
            f"Order {order.number} was a try-on; goods bought after it come back against the "
            "till's receipt.",
            order_id=str(order.id),
            fulfillment_type=order.fulfillment_type.value,
        )
    if order.status not in RETURNABLE and not (
        undelivered and order.status is OrderStatus.OUT_FOR_DELIVERY
    ):
        raise Conflict(
            f"Order {order.number} is {order.status.value}; goods come back only from a "
            "completed order, or from a delivery the rider reported failed (cancel it instead "
            "if it was not handed over).",
            order_id=str(order.id),
            order_status=order.status.value,
        )
    if not lines:
        raise InvalidInput.field("lines", "name at least one line to return")
    by_id = {x.id: x for x in order.lines}
    seen: set[tuple[uuid.UUID, bool]] = set()
    rows: list[OrderReturnLine] = []
    total = 0
    for i, item in enumerate(lines):
        line = by_id.get(item.line_id)
        if line is None or line.kind is not LineKind.GOODS or line.sku_id is None:
            raise InvalidInput.field(f"lines[{i}].line_id", "not a goods line of this order")
        if (item.line_id, item.substitute) in seen:
            raise InvalidInput.field(f"lines[{i}].line_id", "appears twice; add the quantities")
        seen.add((item.line_id, item.substitute))
        if item.substitute and not line.substitute_quantity:
            raise InvalidInput.field(f"lines[{i}].substitute", "no substitute was sent for it")
        left = _returnable(line, item.substitute)
        if not 0 < item.quantity <= left:
            what = "its substitute" if item.substitute else "this line"
            raise InvalidInput.field(
                f"lines[{i}].quantity", f"1 to {left} of {what} can still come back"
            )
        if item.substitute:
            refund = _substitute_refund(line, item.quantity)
            line.substitute_returned_quantity += item.quantity
            line.substitute_returned_refund += refund
        else:
            refund = _line_refund(line, item.quantity)
            line.returned_quantity += item.quantity
            line.returned_refund += refund
        total += refund
        rows.append(
            OrderReturnLine(
                order_line_id=line.id,
                substitute=item.substitute,
                quantity=item.quantity,
                condition=item.condition,
                refund=refund,
            )
        )
    # A gift whose threshold the goods kept no longer reach costs its worth, taken from this
    # refund; one that came back after that is given back (orders.gift_returns).
    gifts = settle_gifts(session, order, total)
    total -= sum(x.amount for x in gifts)
    order_return = OrderReturn(
        id=new_id(),
        order_id=order.id,
        reference=reference,
        store_id=store_id,
        refund_total=total,
        reason=reason,
        actor=context.actor.get(),
        lines=rows,
        gift_adjustments=gifts,
    )
    session.add(order_return)
    session.flush()
    _restock(session, order, order_return, caller)
    refund_order(
        session,
        order,
        min(total, order.paid_amount - order.refunded_amount),
        RefundReason.RETURN,
        providers=providers,
        return_id=order_return.id,
    )
    # Back means the line's own units and its substitute's: a customer keeping the substitute
    # has not returned the order.
    everything_back = all(
        _returnable(x, False) == 0 and _returnable(x, True) == 0
        for x in order.lines
        if x.kind is LineKind.GOODS
    )
    returned = {
        "return_id": order_return.id,
        "returned_at_store_id": store_id,
        "refund_total": total,
    }
    order, moved = move_order(
        session,
        order.id,
        OrderStatus.RETURNED if everything_back else OrderStatus.PARTIALLY_RETURNED,
        note=f"return {reference} at {store.code}",
        event_fields=returned,
    )
    if not moved:  # a second partial return: the status stays, the event still tells
        record_event(
            session,
            OrderReturned(
                **order_facts(order),
                previous_status=order.status.value,
                occurred_at=utcnow(),
                **returned,
            ),
            aggregate_type="order",
            aggregate_id=order.id,
            store_id=order.store_id,
        )
    return Returned(order_return, created=True)


def _restock(session: Session, order: Order, order_return: OrderReturn, caller: Principal) -> None:
    """Resellable goods back on the receiving store's shelf; damaged ones in and written off,
    so the ledger shows both what came back and what was thrown away."""
    lines = {x.id: x for x in order.lines}

    def sku_of(back: OrderReturnLine) -> uuid.UUID | None:
        line = lines[back.order_line_id]
        return line.substitute_sku_id if back.substitute else line.sku_id

    # One movement per SKU: a parcel split over two stores holds the SKU on two lines, and a
    # substitute may be another line's SKU.
    per_sku: dict[uuid.UUID, int] = {}
    for x in order_return.lines:
        if (sku := sku_of(x)) is not None:
            per_sku[sku] = per_sku.get(sku, 0) + x.quantity
    came_back = [Line(sku, quantity) for sku, quantity in per_sku.items()]
    reference = f"return:{order_return.reference}"
    record_return(session, order_return.store_id, came_back, reference=reference)
    for x in order_return.lines:
        sku = sku_of(x)
        if x.condition is ItemCondition.DAMAGED and sku is not None:
            adjust_stock(
                session,
                order_return.store_id,
                sku,
                -x.quantity,
                reason=f"returned damaged (order {order.number})",
                approver=caller.name,
                kind=MovementKind.WRITE_OFF,
                reference_type="return",
                reference_id=order_return.reference,
            )


def _her_row_first(session: Session, order_id: uuid.UUID) -> None:
    """Lock the member of a member's order before the order, the order her erasure and her
    merges take them in (her row, then her orders): a return racing them waits for them, or
    they for it, instead of deadlocking. The return needs her row anyway: points paid come
    back under her lock, and a second write to the order re-checks its member."""
    member_id = session.scalar(select(Order.member_id).where(Order.id == order_id))
    if member_id is not None:
        members.lock_member(session, member_id, allow_erased=True)


def get_return(session: Session, return_id: uuid.UUID) -> OrderReturn:
    found = session.get(OrderReturn, return_id)
    if found is None:
        raise NotFound(f"No return {return_id}.")
    return found
