"""Paying for orders: provider payments and points, the order becoming paid, cancellation.

A provider's notifications are applied in :mod:`payment_notifications`; money goes back in
:mod:`refunds`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, DomainError, InvalidInput
from zhongtai.core.ids import new_id, replayable_id
from zhongtai.core.logging import get_logger
from zhongtai.core.outbox import record_event
from zhongtai.integrations.payments.provider import (
    PROVIDER_TENDERS,
    PaymentProvider,
    PaymentRequest,
)
from zhongtai.integrations.payments.provider import PaymentStatus as ProviderStatus
from zhongtai.inventory.order_holds import extend_hold, lock_holds_and_stock, unship_unheld
from zhongtai.inventory.reservations import in_lock_order, release_reservation
from zhongtai.inventory.rules import Line
from zhongtai.loyalty.models import SourceType
from zhongtai.loyalty.service import Source, redeem_coupon, redeem_points
from zhongtai.orders.events import PaymentCaptured, PaymentFailed, PaymentVoided
from zhongtai.orders.kinds import OrderStatus, TenderType
from zhongtai.orders.lifecycle import get_order, move_order
from zhongtai.orders.models import Order, Payment, PaymentStatus, RefundReason
from zhongtai.orders.refunds import provider_of, refund_order
from zhongtai.orders.settings import order_settings

log = get_logger("zhongtai.orders")

_FROM_PROVIDER = {
    ProviderStatus.PENDING: PaymentStatus.PENDING,
    ProviderStatus.AUTHORIZED: PaymentStatus.AUTHORIZED,
    ProviderStatus.CAPTURED: PaymentStatus.CAPTURED,
    ProviderStatus.DECLINED: PaymentStatus.FAILED,
    ProviderStatus.VOIDED: PaymentStatus.VOIDED,
}


@dataclass(frozen=True)
class StartedPayment:
    payment: Payment
    #: For wallets: the QR / deep-link payload the customer opens to confirm.
    customer_action: str | None


#: Payments that took no money and never will.
_ENDED_UNPAID = (PaymentStatus.FAILED, PaymentStatus.VOIDED)
#: Payments that may still take money: the customer has not approved yet, or funds are held.
_UNCAPTURED = (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED)


def _open_amount(session: Session, order: Order) -> int:
    """What is still to pay: the total less payments captured or under way."""
    taken = session.scalars(
        select(Payment.amount).where(
            Payment.order_id == order.id, Payment.status.not_in(_ENDED_UNPAID)
        )
    ).all()
    return order.total - sum(taken)


def void_uncaptured(
    session: Session, order: Order, providers: Mapping[str, PaymentProvider]
) -> None:
    """Release the order's payments not captured yet at their providers: a wallet payment the
    customer left unapproved, an authorisation. One the customer completed first is recorded
    as captured instead (and counts as paid, or is refunded with a cancelled order's money)."""
    open_ones = session.scalars(
        select(Payment)
        .where(Payment.order_id == order.id, Payment.status.in_(_UNCAPTURED))
        .order_by(Payment.id)
    ).all()
    for payment in open_ones:
        if payment.provider is None or payment.provider_ref is None:
            continue  # never handed to a provider: nothing is held anywhere
        answer = provider_of(payment, providers).void(payment.provider_ref)
        record_provider_state(session, order, payment, answer.status, sequence=0)


def _awaiting_payment(session: Session, order_id: uuid.UUID) -> Order:
    """The order, locked, if it still waits for payment; else 409. Past its payment deadline
    it does not: its stock hold ends then, and money taken after it would buy nothing."""
    order = get_order(session, order_id, for_update=True)
    if order.status is not OrderStatus.CREATED or order.payment_due_at is None:
        raise Conflict(
            f"Order {order.number} is {order.status.value}; only an order waiting for payment "
            "takes one.",
            order_id=str(order.id),
            order_status=order.status.value,
        )
    if order.payment_due_at <= utcnow():
        raise Conflict(
            f"Order {order.number} was due to be paid by {order.payment_due_at.isoformat()}; "
            "it is cancelled as unpaid and takes no payment.",
            order_id=str(order.id),
            payment_due_at=order.payment_due_at.isoformat(),
        )
    return order


def start_payment(
    session: Session,
    order_id: uuid.UUID,
    *,
    tender: TenderType,
    provider: PaymentProvider,
    notify_url: str,
    amount: int | None = None,
    providers: Mapping[str, PaymentProvider] | None = None,
) -> StartedPayment:
    """Ask the provider to take (part of) what an unpaid order still owes.

    Cards and stored value are captured at once; wallets answer pending until the customer
    confirms, and the provider's notification completes them. The order becomes paid when its
    captured payments cover the total. Payments under way that leave no room for this one are
    voided first at their providers (``providers``, by name).
    """
    order = _awaiting_payment(session, order_id)
    if tender not in PROVIDER_TENDERS:
        raise InvalidInput.field(
            "tender", f"online orders are paid with {', '.join(sorted(PROVIDER_TENDERS))}"
        )
    due = _open_amount(session, order)
    if due == 0 or (amount is not None and amount > due):
        # The payments under way leave no room for this one: the customer is paying another
        # way (Alipay after an unapproved WeChat Pay), so those are released first.
        void_uncaptured(session, order, providers or {provider.name: provider})
        if order.status is not OrderStatus.CREATED:
            raise Conflict(
                f"Order {order.number} was paid meanwhile by a payment under way.",
                order_id=str(order.id),
                order_status=order.status.value,
            )
        due = _open_amount(session, order)
    amount = due if amount is None else amount
    if not 0 < amount <= due:
        raise InvalidInput.field("amount", f"must be 1 to {due} fen (what is still due)")
    payment = Payment(
        id=_attempt_id(session, order, tender, amount),
        order_id=order.id,
        tender=tender,
        amount=amount,
        status=PaymentStatus.PENDING,
        provider=provider.name,
    )
    session.add(payment)
    session.flush()
    response = provider.authorize(
        PaymentRequest(
            payment_id=payment.id,
            order_id=order.id,
            amount_fen=amount,
            tender=tender,
            notify_url=notify_url,
            currency=order.currency,
        )
    )
    payment.provider_ref = response.provider_ref
    record_provider_state(session, order, payment, response.status, sequence=0)
    return StartedPayment(payment, response.customer_action)


def _attempt_id(session: Session, order: Order, tender: TenderType, amount: int) -> uuid.UUID:
    """The payment's id, which the provider takes as its idempotency key: the same for the same
    attempt (the order's payments so far, tender, amount). A request retried after its
    transaction was lost -- the provider charged, the commit failed -- asks again under the
    same id, and the provider answers that charge instead of charging twice. A declined
    attempt stays recorded, so the next one is another."""
    attempts = session.scalar(
        select(func.count()).select_from(Payment).where(Payment.order_id == order.id)
    )
    return replayable_id(order.placed_at, attempts or 0, "payment", order.id, tender, amount)


def pay_with_points(session: Session, order_id: uuid.UUID, points: int) -> Payment:
    """Pay part of an unpaid order with the member's points (``points_per_yuan_off`` points a
    yuan, at most ``points_max_share_pct`` of the order): booked once per order in the points
    ledger, captured at once. Two touchpoints spending the same points never overdraw them."""
    order = _awaiting_payment(session, order_id)
    if order.member_id is None:
        raise InvalidInput.field("tender", "points pay only a member's order")
    settings = order_settings()
    rate = settings.points_per_yuan_off
    if points <= 0 or (points * 100) % rate:
        raise InvalidInput.field(
            "points", f"a positive multiple of {max(1, rate // 100)} (whole fen: {rate} = 1 yuan)"
        )
    amount = points * 100 // rate
    allowed = order.total * settings.points_max_share_pct // 100
    already = sum(
        session.scalars(
            select(Payment.amount).where(
                Payment.order_id == order.id,
                Payment.tender == TenderType.POINTS,
                Payment.status == PaymentStatus.CAPTURED,
            )
        )
    )
    due = _open_amount(session, order)
    if already:
        raise Conflict(f"Order {order.number} is already part paid with points.")
    if amount > min(allowed, due):
        raise InvalidInput.field(
            "points",
            f"at most {min(allowed, due) * rate // 100} points "
            f"({settings.points_max_share_pct}% of the order, and what is still due)",
        )
    redeem_points(
        session,
        order.member_id,
        Source(SourceType.ORDER, str(order.id)),
        points,
        store_id=order.store_id,
    )
    payment = Payment(
        id=new_id(),
        order_id=order.id,
        tender=TenderType.POINTS,
        amount=amount,
        status=PaymentStatus.PENDING,
    )
    session.add(payment)
    session.flush()
    record_provider_state(session, order, payment, ProviderStatus.CAPTURED, sequence=0)
    return payment


def record_provider_state(
    session: Session, order: Order, payment: Payment, status: ProviderStatus, *, sequence: int
) -> None:
    new = _FROM_PROVIDER[status]
    if sequence:
        payment.provider_sequence = sequence
    if new is payment.status:
        return
    payment.status = new
    facts = {
        "payment_id": payment.id,
        "order_id": order.id,
        "tender": payment.tender.value,
        "amount": payment.amount,
        "provider": payment.provider,
    }
    if new is PaymentStatus.CAPTURED:
        payment.captured_at = utcnow()
        order.paid_amount += payment.amount
        record_event(
            session,
            PaymentCaptured(**facts),
            aggregate_type="order",
            aggregate_id=order.id,
            store_id=order.store_id,
        )
        session.flush()
        settle_if_paid(session, order)
    elif new in _ENDED_UNPAID:
        ended = PaymentFailed(**facts) if new is PaymentStatus.FAILED else PaymentVoided(**facts)
        record_event(
            session, ended, aggregate_type="order", aggregate_id=order.id, store_id=order.store_id
        )


def settle_if_paid(session: Session, order: Order, *, now: datetime | None = None) -> bool:
    """Mark the order paid once captured payments cover its total, and keep its stock held
    while the store works on it.

    Not when a hold has ended meanwhile (the money came after the payment deadline and the
    stock went back on sale): the order stays unpaid, to be cancelled and refunded
    (:func:`_cancel_late_payment`, or the unpaid-order sweeper)."""
    if order.status is not OrderStatus.CREATED or order.paid_amount < order.total:
        return False
    now = now or utcnow()
    until = now + timedelta(days=order_settings().paid_hold_days)
    kept = [extend_hold(session, uuid.UUID(r), until) for r in order.reservation_ids]
    if not all(kept):
        log.warning("order.paid_after_hold_ended", order_id=str(order.id))
        return False
    move_order(
        session,
        order.id,
        OrderStatus.PAID,
        event_fields={"paid_amount": order.paid_amount},
        payment_due_at=None,
    )
    _redeem_coupons(session, order)
    return True


def _redeem_coupons(session: Session, order: Order) -> None:
    """The coupons priced into a paid order are used now, through the checkout's lock. A coupon
    that can no longer be redeemed does not undo the payment: it is logged for HQ to follow."""
    for coupon in (order.offers or {}).get("coupons", []):
        try:
            with session.begin_nested():
                redeem_coupon(
                    session,
                    uuid.UUID(coupon["coupon_id"]),
                    Source(SourceType.ORDER, str(order.id)),
                    discount_fen=int(coupon["amount"]),
                    reference=f"quote:{order.quote_id}" if order.quote_id else None,
                    member_id=order.member_id,
                )
        except DomainError as refused:
            log.error(
                "coupon.not_redeemed",
                order_id=str(order.id),
                coupon_id=coupon["coupon_id"],
                reason=refused.detail,
            )


def _substitutes_taken(order: Order) -> dict[uuid.UUID, dict[uuid.UUID, int]]:
    """The substitutes the pack took off each location's shelf, by SKU: still in the store
    while the order can be cancelled, so they go back."""
    taken: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
    for line in order.lines:
        if line.substitute_sku_id is not None and line.substitute_quantity:
            at = taken.setdefault(line.location_id, {})
            at[line.substitute_sku_id] = (
                at.get(line.substitute_sku_id, 0) + line.substitute_quantity
            )
    return taken


def _stock_rows(
    order: Order, substitutes: dict[uuid.UUID, dict[uuid.UUID, int]]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Every balance row a cancellation may change: the order's own (their holds) and the
    substitutes'."""
    rows: dict[uuid.UUID, set[uuid.UUID]] = {}
    for line in order.lines:
        if line.sku_id is not None:
            rows.setdefault(line.location_id, set()).add(line.sku_id)
    for location_id, taken in substitutes.items():
        rows.setdefault(location_id, set()).update(taken)
    return rows


def cancel_order(
    session: Session,
    order_id: uuid.UUID,
    *,
    reason: str,
    providers: Mapping[str, PaymentProvider],
) -> Order:
    """Cancel before handover: release the held stock and refund whatever was paid.
    Cancelling a cancelled order changes nothing; after handover it is a 409 (return it)."""
    get_order(session, order_id, for_update=True)
    order, moved = move_order(
        session, order_id, OrderStatus.CANCELLED, note=reason, event_fields={"reason": reason}
    )
    if not moved:
        return order
    holds = in_lock_order(session, order.reservation_ids)
    back = _substitutes_taken(order)
    if back:  # frees held rows and puts substitutes back: all locked first, in lock order
        lock_holds_and_stock(session, holds, _stock_rows(order, back))
    for reservation_id in holds:
        release_reservation(session, reservation_id)
    for location_id, taken in sorted(back.items()):
        lines = [Line(sku_id, quantity) for sku_id, quantity in taken.items()]
        unship_unheld(session, location_id, lines, reference=f"order:{order.id}:substitutes")
    # Nothing may be paid on it any more, and funds held for it are freed.
    void_uncaptured(session, order, providers)
    # Whatever was captured goes back, also from an order cancelled before it was paid in
    # full (a part paid by card or points, then left to expire): nothing else would refund it.
    refund_order(
        session,
        order,
        order.paid_amount - order.refunded_amount,
        RefundReason.CANCELLED,
        providers=providers,
    )
    return order
