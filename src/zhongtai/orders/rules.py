"""Pure rules of an order's life: the status table per fulfilment type, its events, returns."""

from __future__ import annotations

from collections.abc import Mapping

from zhongtai.inventory.rules import Step
from zhongtai.orders.kinds import FulfillmentType, OrderStatus

__all__ = [
    "CANCELLABLE",
    "EVENTS",
    "PLACED_EVENT",
    "TRANSITIONS",
    "Step",
    "illegal_step_message",
    "next_statuses",
    "order_step",
    "return_refund",
    "returnable_quantity",
    "step_event",
]

_CREATED = OrderStatus.CREATED
_PAID = OrderStatus.PAID
_ACCEPTED = OrderStatus.ACCEPTED
_PICKING = OrderStatus.PICKING
_PACKED = OrderStatus.PACKED
_READY = OrderStatus.READY_FOR_PICKUP
_OUT = OrderStatus.OUT_FOR_DELIVERY
_SHIPPED = OrderStatus.SHIPPED
_COMPLETED = OrderStatus.COMPLETED
_CANCELLED = OrderStatus.CANCELLED
_PART_RETURNED = OrderStatus.PARTIALLY_RETURNED
_RETURNED = OrderStatus.RETURNED

# After the hand-over every type ends the same way: goods come back in one or more returns.
# A second partial return leaves the status as it is (order_step answers ALREADY); the return
# record itself carries the detail.
_AFTER_HANDOVER: Mapping[OrderStatus, tuple[OrderStatus, ...]] = {
    _COMPLETED: (_PART_RETURNED, _RETURNED),
    _PART_RETURNED: (_RETURNED,),
    _RETURNED: (),
    _CANCELLED: (),
}

#: The allowed next statuses of each status, per fulfilment type; anything else is illegal.
#:
#: Cancellation is allowed until the goods leave the store's hands: to the customer at the till
#: or the pickup counter, to the rider (``out_for_delivery``) or to the carrier (``shipped``).
#: From then on the remedy is a return. A ``ready_for_pickup`` order can still be cancelled:
#: that is the customer who never came, and the reserve-and-try customer who did not buy.
#: Cancelling an order refunds whatever of it was captured (``payments.cancel_order``).
TRANSITIONS: Mapping[FulfillmentType, Mapping[OrderStatus, tuple[OrderStatus, ...]]] = {
    FulfillmentType.IN_STORE: {
        _CREATED: (_PAID, _CANCELLED),
        _PAID: (_COMPLETED, _CANCELLED),  # a paid sale voided before the goods leave the till
        **_AFTER_HANDOVER,
    },
    FulfillmentType.DELIVERY: {
        _CREATED: (_PAID, _CANCELLED),
        _PAID: (_ACCEPTED, _CANCELLED),
        _ACCEPTED: (_PICKING, _CANCELLED),
        _PICKING: (_PACKED, _CANCELLED),
        _PACKED: (_OUT, _CANCELLED),
        # A parcel the rider could not deliver comes back to the store as a return.
        _OUT: (_COMPLETED, _PART_RETURNED, _RETURNED),
        **_AFTER_HANDOVER,
    },
    FulfillmentType.PICKUP: {
        _CREATED: (_PAID, _CANCELLED),
        _PAID: (_ACCEPTED, _CANCELLED),
        _ACCEPTED: (_PICKING, _CANCELLED),
        _PICKING: (_PACKED, _CANCELLED),
        _PACKED: (_READY, _CANCELLED),
        _READY: (_COMPLETED, _CANCELLED),
        **_AFTER_HANDOVER,
    },
    FulfillmentType.SHIP: {
        _CREATED: (_PAID, _CANCELLED),
        _PAID: (_ACCEPTED, _CANCELLED),
        _ACCEPTED: (_PICKING, _CANCELLED),
        _PICKING: (_PACKED, _CANCELLED),
        _PACKED: (_SHIPPED, _CANCELLED),
        _SHIPPED: (_COMPLETED,),
        **_AFTER_HANDOVER,
    },
    # Nothing is paid up front: the customer pays at the till if they buy (ready -> completed)
    # and walks away owing nothing if they do not (ready -> cancelled).
    FulfillmentType.RESERVE_TRY: {
        _CREATED: (_ACCEPTED, _CANCELLED),
        _ACCEPTED: (_PICKING, _CANCELLED),
        _PICKING: (_PACKED, _CANCELLED),
        _PACKED: (_READY, _CANCELLED),
        _READY: (_COMPLETED, _CANCELLED),
        **_AFTER_HANDOVER,
    },
}

#: The statuses each fulfilment type may be cancelled from (derived from the table).
CANCELLABLE: Mapping[FulfillmentType, frozenset[OrderStatus]] = {
    kind: frozenset(s for s, nexts in table.items() if _CANCELLED in nexts)
    for kind, table in TRANSITIONS.items()
}

_PASSES_THROUGH: Mapping[FulfillmentType, frozenset[OrderStatus]] = {
    kind: frozenset(table) | {s for nexts in table.values() for s in nexts}
    for kind, table in TRANSITIONS.items()
}

#: The event written to the outbox when an order is placed (it has no "from" status).
PLACED_EVENT = "order.created"

#: The event of each transition, by the status it arrives at. ``ready_for_pickup`` is the store's
#: news (the customer is told to come), hence ``fulfillment.``. A partial and a full return are
#: one event, ``order.returned``: its payload's status tells them apart.
EVENTS: Mapping[OrderStatus, str] = {
    _PAID: "order.paid",
    _ACCEPTED: "order.accepted",
    _PICKING: "order.picking",
    _PACKED: "order.packed",
    _READY: "fulfillment.ready_for_pickup",
    _OUT: "order.out_for_delivery",
    _SHIPPED: "order.shipped",
    _COMPLETED: "order.completed",
    _CANCELLED: "order.cancelled",
    _PART_RETURNED: "order.returned",
    _RETURNED: "order.returned",
}


def next_statuses(
    fulfillment_type: FulfillmentType, current: OrderStatus
) -> tuple[OrderStatus, ...]:
    """The statuses an order of this type may move to from ``current``, forward step first."""
    return TRANSITIONS[fulfillment_type].get(current, ())


def order_step(
    fulfillment_type: FulfillmentType, current: OrderStatus, wanted: OrderStatus
) -> Step:
    """APPLY an allowed move, ALREADY when the order is there (a retry), else ILLEGAL (409)."""
    if current is wanted:
        return Step.ALREADY
    if wanted in next_statuses(fulfillment_type, current):
        return Step.APPLY
    return Step.ILLEGAL


def _or_list(statuses: tuple[OrderStatus, ...]) -> str:
    names = [s.value for s in statuses]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def illegal_step_message(
    fulfillment_type: FulfillmentType, current: OrderStatus, wanted: OrderStatus
) -> str:
    """A sentence for the 409: what was asked, why not, and what is allowed next."""
    article = "An" if fulfillment_type.value[0] in "aeiou" else "A"
    head = (
        f"{article} {fulfillment_type.value} order that is {current.value} "
        f"cannot become {wanted.value}"
    )
    allowed = next_statuses(fulfillment_type, current)
    if not allowed:
        return f"{head}: {current.value} is final, no further step is allowed."
    reason = ""
    if wanted is _CANCELLED:
        reason = " (the goods have left the store; once completed they come back as a return)"
    elif wanted is _PAID and fulfillment_type is FulfillmentType.RESERVE_TRY:
        reason = " (a reserve-and-try order is paid at the till when the customer buys)"
    elif wanted not in _PASSES_THROUGH[fulfillment_type]:
        reason = f" ({fulfillment_type.value} orders never pass through {wanted.value})"
    return f"{head}{reason}; next it may become {_or_list(allowed)}."


def step_event(wanted: OrderStatus) -> str:
    """The outbox event name of a transition that arrives at ``wanted``."""
    try:
        return EVENTS[wanted]
    except KeyError:
        raise ValueError(f"no transition arrives at {wanted.value}; use {PLACED_EVENT}") from None


# --- returns ---------------------------------------------------------------------------------


def returnable_quantity(ordered: int, picked_short: int, returned: int) -> int:
    """Units (or grams) of a line that may still come back: what was handed over, less returns."""
    if min(ordered, picked_short, returned) < 0:
        raise ValueError("quantities are never negative")
    return max(0, ordered - picked_short - returned)


def return_refund(
    line_net_paid: int, line_quantity: int, already_returned_qty: int, returning_qty: int
) -> int:
    """Fen refunded for ``returning_qty`` of a line, proportional to what the line cost net.

    The refund is the difference of two cumulative shares, each rounded half up:
    ``share(already + returning) - share(already)`` with ``share(k) = net * k / quantity``.
    The parts therefore add up, in any number of steps, to exactly ``line_net_paid`` once all
    units are back, and the last unit takes the rounding remainder. Short-picked units are
    refunded by the same rule as if returned first: pass them in ``already_returned_qty``
    (and count them as the first returning units when the short pick itself is refunded).
    """
    if line_net_paid < 0 or line_quantity <= 0:
        raise ValueError("a line has a positive quantity and a net amount not below zero")
    if already_returned_qty < 0 or returning_qty <= 0:
        raise ValueError("returning takes a positive quantity; the quantity back is not negative")
    if already_returned_qty + returning_qty > line_quantity:
        raise ValueError(
            f"cannot return {returning_qty} when {line_quantity - already_returned_qty} remain"
        )

    def share(k: int) -> int:
        return (2 * line_net_paid * k + line_quantity) // (2 * line_quantity)

    return share(already_returned_qty + returning_qty) - share(already_returned_qty)
