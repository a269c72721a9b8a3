"""Pickup in store: the order waits with a code, and a clerk of that store hands it over once,
to the customer who says the code (or shows its QR). Wrong codes are counted and throttled."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.throttle import count_failure, ensure_not_throttled
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, DomainError, InvalidInput, NotFound
from zhongtai.core.logging import get_logger
from zhongtai.core.settings import Settings
from zhongtai.fulfillment.tasks import hand_over_goods
from zhongtai.inventory.reservations import release_reservation
from zhongtai.members.pii import cipher_for
from zhongtai.orders.codes import (
    InvalidPickupQr,
    new_pickup_code,
    pickup_code_digest,
    pickup_code_matches,
    pickup_qr_payload,
    read_pickup_qr,
)
from zhongtai.orders.errors import WrongPickupCode
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.lifecycle import get_order, move_order
from zhongtai.orders.models import Order
from zhongtai.orders.settings import order_settings
from zhongtai.orders.uncollected_orders import collect_by, keep_at_counter

log = get_logger("zhongtai.auth")

_PURPOSE = "pickup_code"
THROTTLE_KIND = "pickup_code"


def _secret(settings: Settings) -> str:
    return settings.secret_key.get_secret_value()


@dataclass(frozen=True)
class PickupTicket:
    """What the customer shows at the counter."""

    code: str
    qr_payload: str


def make_ready_for_pickup(session: Session, order_id: uuid.UUID, *, settings: Settings) -> Order:
    """The packed order waits at the store: it gets its pickup code (kept as a keyed digest to
    check against, and sealed so the customer's app can show it again), and its stock stays
    held while it waits (:func:`~zhongtai.orders.uncollected_orders.keep_at_counter`)."""
    order = get_order(session, order_id, for_update=True)
    code = new_pickup_code()
    ready_at = utcnow()
    order, moved = move_order(
        session,
        order_id,
        OrderStatus.READY_FOR_PICKUP,
        event_fields={"collect_by": collect_by(order.fulfillment_type, ready_at)},
        pickup_code_digest=pickup_code_digest(_secret(settings), order.id, code),
        pickup_code_sealed=cipher_for(settings).encrypt(code, purpose=_PURPOSE),
    )
    if moved:
        keep_at_counter(session, order, ready_at)
    return order


def pickup_ticket(order: Order, settings: Settings) -> PickupTicket | None:
    """The code and QR payload for the customer, while the order waits to be picked up."""
    if order.pickup_code_sealed is None or order.status is not OrderStatus.READY_FOR_PICKUP:
        return None
    code = cipher_for(settings).decrypt(order.pickup_code_sealed, purpose=_PURPOSE)
    return PickupTicket(code, pickup_qr_payload(_secret(settings), order.id, code))


class PickupNotFound(NotFound):
    """No order by that number or id waits at the clerk's stores. Said alike whether there is no
    such order or it is another store's, so that a clerk learns nothing of other stores' orders
    (not even that one exists) and cannot try codes there to find out."""


#: The subject a try outside the clerk's stores is counted under: never an order's own, so a
#: clerk elsewhere cannot lock a customer's pickup, and alike whether the order exists or not.
_ELSEWHERE = "elsewhere:"

#: The refusals whose try was counted in the caller's transaction, which also holds the order's
#: row: the caller commits that transaction with the answer. Rolled back, the try would go
#: uncounted; committed after the row was let go, a try racing this one would be judged first.
COUNTED_REFUSALS: tuple[type[DomainError], ...] = (WrongPickupCode, PickupNotFound)


def _find(session: Session, order_ref: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The id and store of an order given by id or by its number (what the customer reads out),
    whichever store it belongs to; None if there is none."""
    try:
        where = Order.id == uuid.UUID(order_ref)
    except ValueError:
        where = Order.number == order_ref.strip().upper()
    found = session.execute(select(Order.id, Order.store_id).where(where)).one_or_none()
    return None if found is None else (found.id, found.store_id)


def _count_try(
    session: Session, *, subject: str, clerk: Principal, client_ip: str, reason: str
) -> None:
    """Count a refused try in the caller's transaction (see :data:`COUNTED_REFUSALS`)."""
    count_failure(
        session,
        kind=THROTTLE_KIND,
        subject=subject,
        client_ip=client_ip,
        reason=f"{reason} by {clerk.name}",
    )


def hand_over_pickup(
    session: Session,
    *,
    clerk: Principal,
    client_ip: str,
    settings: Settings,
    order_ref: str | None = None,
    code: str | None = None,
    qr_payload: str | None = None,
) -> Order:
    """Hand a waiting order over to the customer who gives its code (with the order number or
    id) or shows its QR. Only a clerk of the order's store may; only once.

    Every refused try is counted, and after ``pickup_max_attempts`` wrong codes the order is
    locked for a while (429). A wrong code answers 422; an order that does not exist or is
    another store's answers 404, alike. Both are :data:`COUNTED_REFUSALS`: the caller commits
    them. The wrong code is counted under the order's row lock, taken before the count is read,
    so that racing tries queue there and each sees the ones before it: no more than
    ``pickup_max_attempts`` codes are ever judged. The order's row is the first lock, as in
    every step of the store's work on an order, so this never deadlocks with them.
    """
    secret = _secret(settings)
    if qr_payload is not None:
        try:
            ticket = read_pickup_qr(secret, qr_payload)
        except InvalidPickupQr as error:
            raise InvalidInput.field("qr_payload", str(error)) from None
        order_ref, code = str(ticket.order_id), ticket.code
    if order_ref is None or code is None:
        raise InvalidInput.field("code", "give the order number and its code, or the QR payload")
    limits = order_settings()
    window = timedelta(minutes=limits.pickup_lock_minutes)
    found = _find(session, order_ref)
    if found is None or not clerk.covers_store(found[1]):
        # Not the clerk's to hand over, and none of her business: only her address's throttle
        # is asked (the order's own lock would tell that it exists), and the try counts against
        # her address alone, whatever the code: the two cases throttle alike, and a clerk
        # elsewhere cannot lock a customer's pickup at its own store.
        ensure_not_throttled(
            session,
            kind=THROTTLE_KIND,
            subject=None,
            client_ip=client_ip,
            max_per_subject=limits.pickup_max_attempts,
            max_per_ip=limits.pickup_max_attempts * 10,
            window=window,
        )
        _count_try(
            session,
            subject=f"{_ELSEWHERE}{order_ref.strip().upper()}",
            clerk=clerk,
            client_ip=client_ip,
            reason="pickup outside own stores" if found else "pickup of no such order",
        )
        raise PickupNotFound(f"No order {order_ref.strip()} waits for pickup at your stores.")
    # Locked before anything is checked: racing clerks queue here, and each sees what the one
    # before did (the order handed over, or its wrong code counted).
    order = get_order(session, found[0], for_update=True)
    if order.status is OrderStatus.COMPLETED and order.pickup_code_digest is not None:
        raise Conflict(
            f"Order {order.number} was already picked up.",
            order_id=str(order.id),
            order_status=order.status.value,
        )
    if order.status is not OrderStatus.READY_FOR_PICKUP or order.pickup_code_digest is None:
        raise Conflict(
            f"Order {order.number} is {order.status.value}, not ready for pickup.",
            order_id=str(order.id),
            order_status=order.status.value,
        )
    ensure_not_throttled(
        session,
        kind=THROTTLE_KIND,
        subject=str(order.id),
        client_ip=client_ip,
        max_per_subject=limits.pickup_max_attempts,
        max_per_ip=limits.pickup_max_attempts * 10,
        window=window,
    )
    if not pickup_code_matches(secret, order.id, code.strip(), order.pickup_code_digest):
        _count_try(
            session,
            subject=str(order.id),
            clerk=clerk,
            client_ip=client_ip,
            reason="wrong pickup code",
        )
        raise WrongPickupCode(
            f"That is not the pickup code of order {order.number}.", order_id=str(order.id)
        )
    order, moved = move_order(
        session,
        order.id,
        OrderStatus.COMPLETED,
        note=f"picked up, handed over by {clerk.name}",
        completed_at=utcnow(),
    )
    if not moved:  # cannot happen under the lock; never hand the goods over twice
        raise Conflict(f"Order {order.number} was already picked up.", order_id=str(order.id))
    if order.fulfillment_type is FulfillmentType.RESERVE_TRY:
        # The try-on is over: what the customer buys is rung up at the till (a POS sale
        # takes that stock); the rest of the hold goes back to the shelf.
        for reservation_id in order.reservation_ids:
            release_reservation(session, uuid.UUID(reservation_id))
    else:
        hand_over_goods(session, order)
    return order
