"""Paying for orders and giving money back: provider payments and their notifications, the
order becoming paid, refunds split over the original tenders, cancellation."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, DomainError, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.logging import get_logger
from zhongtai.core.outbox import record_event
from zhongtai.integrations.payments.provider import (
    PROVIDER_TENDERS,
    PaymentProvider,
    PaymentRequest,
)
from zhongtai.integrations.payments.provider import PaymentStatus as ProviderStatus
from zhongtai.inventory.order_holds import extend_hold
from zhongtai.inventory.reservations import in_lock_order, release_reservation
from zhongtai.loyalty.models import SourceType
from zhongtai.loyalty.service import Source, earn_points, redeem_coupon, redeem_points
from zhongtai.orders.events import PaymentCaptured, PaymentFailed, PaymentRefunded
from zhongtai.orders.kinds import OrderStatus, TenderType
from zhongtai.orders.lifecycle import get_order, move_order
from zhongtai.orders.models import Order, Payment, PaymentStatus, Refund, RefundReason
from zhongtai.orders.rules import cancellation_refunds
from zhongtai.orders.settings import order_settings
from zhongtai.orders.tender_rules import PaidTender, refund_plan

log = get_logger("zhongtai.orders")

_FROM_PROVIDER = {
    ProviderStatus.PENDING: PaymentStatus.PENDING,
    ProviderStatus.AUTHORIZED: PaymentStatus.AUTHORIZED,
    ProviderStatus.CAPTURED: PaymentStatus.CAPTURED,
    ProviderStatus.DECLINED: PaymentStatus.FAILED,
}


@dataclass(frozen=True)
class StartedPayment:
    payment: Payment
    #: For wallets: the QR / deep-link payload the customer opens to confirm.
    customer_action: str | None


def _open_amount(session: Session, order: Order) -> int:
    """What is still to pay: the total less payments captured or under way."""
    taken = session.scalars(
        select(Payment.amount).where(
            Payment.order_id == order.id, Payment.status != PaymentStatus.FAILED
        )
    ).all()
    return order.total - sum(taken)


def start_payment(
    session: Session,
    order_id: uuid.UUID,
    *,
    tender: TenderType,
    provider: PaymentProvider,
    notify_url: str,
    amount: int | None = None,
) -> StartedPayment:
    """Ask the provider to take (part of) what an unpaid order still owes.

    Cards and stored value are captured at once; wallets answer pending until the customer
    confirms, and the provider's notification completes them. The order becomes paid when its
    captured payments cover the total.
    """
    order = get_order(session, order_id, for_update=True)
    if order.status is not OrderStatus.CREATED or order.payment_due_at is None:
        raise Conflict(
            f"Order {order.number} is {order.status.value}; only an order waiting for payment "
            "takes one.",
            order_id=str(order.id),
            order_status=order.status.value,
        )
    if tender not in PROVIDER_TENDERS:
        raise InvalidInput.field(
            "tender", f"online orders are paid with {', '.join(sorted(PROVIDER_TENDERS))}"
        )
    due = _open_amount(session, order)
    amount = due if amount is None else amount
    if not 0 < amount <= due:
        raise InvalidInput.field("amount", f"must be 1 to {due} fen (what is still due)")
    payment = Payment(
        id=new_id(),
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
    _apply_state(session, order, payment, response.status, sequence=0)
    return StartedPayment(payment, response.customer_action)


def pay_with_points(session: Session, order_id: uuid.UUID, points: int) -> Payment:
    """Pay part of an unpaid order with the member's points (``points_per_yuan_off`` points a
    yuan, at most ``points_max_share_pct`` of the order): booked once per order in the points
    ledger, captured at once. Two touchpoints spending the same points never overdraw them."""
    order = get_order(session, order_id, for_update=True)
    if order.status is not OrderStatus.CREATED or order.payment_due_at is None:
        raise Conflict(
            f"Order {order.number} is {order.status.value}; only an order waiting for payment "
            "takes one.",
            order_id=str(order.id),
            order_status=order.status.value,
        )
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
    _apply_state(session, order, payment, ProviderStatus.CAPTURED, sequence=0)
    return payment


def _apply_state(
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
    elif new is PaymentStatus.FAILED:
        record_event(
            session,
            PaymentFailed(**facts),
            aggregate_type="order",
            aggregate_id=order.id,
            store_id=order.store_id,
        )


def settle_if_paid(session: Session, order: Order, *, now: datetime | None = None) -> bool:
    """Mark the order paid once captured payments cover its total, and keep its stock held
    while the store works on it."""
    if order.status is not OrderStatus.CREATED or order.paid_amount < order.total:
        return False
    now = now or utcnow()
    move_order(
        session,
        order.id,
        OrderStatus.PAID,
        event_fields={"paid_amount": order.paid_amount},
        payment_due_at=None,
    )
    until = now + timedelta(days=order_settings().paid_hold_days)
    for reservation_id in order.reservation_ids:
        extend_hold(session, uuid.UUID(reservation_id), until)
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


def apply_notification(
    session: Session,
    provider: PaymentProvider,
    headers: Mapping[str, str],
    body: bytes,
    *,
    providers: Mapping[str, PaymentProvider] | None = None,
) -> Payment:
    """Apply a provider's signed notification, once: a repeated or older one (by its
    sequence) changes nothing. A capture for an order cancelled meanwhile is refunded."""
    note = provider.parse_notification(headers, body)
    payment = session.scalars(
        select(Payment)
        .where(Payment.provider == provider.name, Payment.provider_ref == note.provider_ref)
        .with_for_update()
    ).one_or_none()
    if payment is None:
        raise NotFound(
            f"No payment {note.provider_ref} of {provider.name}.", provider_ref=note.provider_ref
        )
    if note.sequence <= payment.provider_sequence:
        log.info("payment.notification_stale", payment_id=str(payment.id), seq=note.sequence)
        return payment
    order = get_order(session, payment.order_id, for_update=True)
    _apply_state(session, order, payment, note.status, sequence=note.sequence)
    if order.status is OrderStatus.CANCELLED and payment.status is PaymentStatus.CAPTURED:
        refundable = payment.amount - payment.refunded_amount
        if refundable:
            refund_payment(
                session,
                order,
                payment,
                refundable,
                RefundReason.CANCELLED,
                providers=providers or {provider.name: provider},
            )
    return payment


def _paid_tenders(session: Session, order: Order) -> list[PaidTender]:
    rows = session.scalars(
        select(Payment)
        .where(Payment.order_id == order.id, Payment.status == PaymentStatus.CAPTURED)
        .order_by(Payment.captured_at, Payment.id)
    )
    return [PaidTender(p.id, p.tender, p.amount, p.refunded_amount) for p in rows]


def refund_payment(
    session: Session,
    order: Order,
    payment: Payment,
    amount: int,
    reason: RefundReason,
    *,
    providers: Mapping[str, PaymentProvider],
    return_id: uuid.UUID | None = None,
) -> Refund:
    """Give ``amount`` back on one tender: at the provider (idempotent by the refund id), or
    from the till for cash. Never beyond what the tender still holds (a check constraint too)."""
    refund = Refund(
        id=new_id(),
        order_id=order.id,
        payment_id=payment.id,
        tender=payment.tender,
        amount=amount,
        reason=reason,
        return_id=return_id,
    )
    session.add(refund)
    payment.refunded_amount += amount
    order.refunded_amount += amount
    session.flush()
    if payment.tender is TenderType.POINTS and order.member_id is not None:
        # Points paid are given back as points (a new lot), never as money.
        rate = order_settings().points_per_yuan_off
        earn_points(
            session,
            order.member_id,
            Source(SourceType.RETURN, f"refund:{refund.id}"),
            amount * rate // 100,
            store_id=order.store_id,
        )
    elif payment.provider is not None and payment.provider_ref is not None:
        provider = providers.get(payment.provider)
        if provider is None:
            raise Conflict(f"Payment provider {payment.provider} is not configured here.")
        provider.refund(payment.provider_ref, refund.id, amount)
    record_event(
        session,
        PaymentRefunded(
            refund_id=refund.id,
            payment_id=payment.id,
            order_id=order.id,
            tender=payment.tender.value,
            amount=amount,
            reason=reason.value,
        ),
        aggregate_type="order",
        aggregate_id=order.id,
        store_id=order.store_id,
    )
    return refund


def refund_order(
    session: Session,
    order: Order,
    amount: int,
    reason: RefundReason,
    *,
    providers: Mapping[str, PaymentProvider],
    return_id: uuid.UUID | None = None,
) -> list[Refund]:
    """Give ``amount`` back over the order's tenders in the refund order of the tender rules."""
    if amount == 0:
        return []
    parts = refund_plan(_paid_tenders(session, order), amount)
    refunds = []
    for part in parts:
        payment = session.get(Payment, part.payment_id)
        if payment is None:  # the plan was made from these rows a moment ago
            raise RuntimeError(f"payment {part.payment_id} vanished")
        refunds.append(
            refund_payment(
                session,
                order,
                payment,
                part.amount,
                reason,
                providers=providers,
                return_id=return_id,
            )
        )
    return refunds


def cancel_order(
    session: Session,
    order_id: uuid.UUID,
    *,
    reason: str,
    providers: Mapping[str, PaymentProvider],
) -> Order:
    """Cancel before handover: release the held stock and refund whatever was paid.
    Cancelling a cancelled order changes nothing; after handover it is a 409 (return it)."""
    order = get_order(session, order_id, for_update=True)
    previous = order.status
    order, moved = move_order(
        session, order_id, OrderStatus.CANCELLED, note=reason, event_fields={"reason": reason}
    )
    if not moved:
        return order
    for reservation_id in in_lock_order(session, order.reservation_ids):
        release_reservation(session, reservation_id)
    if cancellation_refunds(order.fulfillment_type, previous):
        refund_order(
            session,
            order,
            order.paid_amount - order.refunded_amount,
            RefundReason.CANCELLED,
            providers=providers,
        )
    return order
