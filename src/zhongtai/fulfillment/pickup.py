"""Pickup in store: the order waits with a code, and a clerk of that store hands it over once,
to the customer who says the code (or shows its QR). Wrong codes are counted and throttled."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.throttle import ensure_not_throttled, record_failure
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
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
    check against, and sealed so the customer's app can show it again)."""
    order = get_order(session, order_id, for_update=True)
    code = new_pickup_code()
    order, _ = move_order(
        session,
        order_id,
        OrderStatus.READY_FOR_PICKUP,
        pickup_code_digest=pickup_code_digest(_secret(settings), order.id, code),
        pickup_code_sealed=cipher_for(settings).encrypt(code, purpose=_PURPOSE),
    )
    return order


def pickup_ticket(order: Order, settings: Settings) -> PickupTicket | None:
    """The code and QR payload for the customer, while the order waits to be picked up."""
    if order.pickup_code_sealed is None or order.status is not OrderStatus.READY_FOR_PICKUP:
        return None
    code = cipher_for(settings).decrypt(order.pickup_code_sealed, purpose=_PURPOSE)
    return PickupTicket(code, pickup_qr_payload(_secret(settings), order.id, code))


def _find(session: Session, order_ref: str) -> Order:
    """An order by id or by its number (what the customer reads out)."""
    try:
        stmt = select(Order).where(Order.id == uuid.UUID(order_ref))
    except ValueError:
        stmt = select(Order).where(Order.number == order_ref.strip().upper())
    order = session.scalars(stmt).one_or_none()
    if order is None:
        raise NotFound(f"No order {order_ref}.")
    return order


def record_wrong_code(
    writer: sessionmaker[Session], *, order_id: str, clerk: Principal, client_ip: str
) -> None:
    """Log a wrong code in a transaction of its own (the request's is rolled back): the
    attempts count towards the order's lock."""
    record_failure(
        writer,
        kind=THROTTLE_KIND,
        subject=order_id,
        client_ip=client_ip,
        reason=f"wrong pickup code by {clerk.name}",
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
    id) or shows its QR. Only a clerk of the order's store may; only once; wrong codes are
    answered 422 (the caller logs them with :func:`record_wrong_code`) and, after a few, the
    order is locked for a while (429)."""
    secret = _secret(settings)
    if qr_payload is not None:
        try:
            ticket = read_pickup_qr(secret, qr_payload)
        except InvalidPickupQr as error:
            raise InvalidInput.field("qr_payload", str(error)) from None
        order_ref, code = str(ticket.order_id), ticket.code
    if order_ref is None or code is None:
        raise InvalidInput.field("code", "give the order number and its code, or the QR payload")
    order = _find(session, order_ref)
    clerk.ensure_store(order.store_id)
    # Locked before anything is checked: racing clerks queue here and the second sees it done.
    order = get_order(session, order.id, for_update=True)
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
    limits = order_settings()
    ensure_not_throttled(
        session,
        kind=THROTTLE_KIND,
        subject=str(order.id),
        client_ip=client_ip,
        max_per_subject=limits.pickup_max_attempts,
        max_per_ip=limits.pickup_max_attempts * 10,
        window=timedelta(minutes=limits.pickup_lock_minutes),
    )
    if not pickup_code_matches(secret, order.id, code.strip(), order.pickup_code_digest):
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
