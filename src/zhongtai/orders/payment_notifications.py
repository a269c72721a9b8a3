"""A payment provider's signed notifications, applied once each: a repeated or older one (by
its sequence) changes nothing, one that does not match its payment pays nothing, and money
that arrives for an order cancelled or past its stock hold goes back."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.logging import get_logger
from zhongtai.integrations.payments.provider import PaymentNotification, PaymentProvider
from zhongtai.integrations.payments.provider import PaymentStatus as ProviderStatus
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Order, Payment, PaymentStatus, RefundReason
from zhongtai.orders.payments import cancel_order, record_provider_state
from zhongtai.orders.refunds import refund_payment

log = get_logger("zhongtai.orders")


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
    this_payment = (Payment.provider == provider.name) & (Payment.provider_ref == note.provider_ref)
    order_id = session.scalar(select(Payment.order_id).where(this_payment))
    if order_id is None:
        raise NotFound(
            f"No payment {note.provider_ref} of {provider.name}.", provider_ref=note.provider_ref
        )
    # The order first, then its payment: the order every step on an order (a cancellation, a
    # short-pick refund) locks them in. The other way round, a notification and a cancellation
    # of the same order deadlock on PostgreSQL.
    order = get_order(session, order_id, for_update=True)
    payment = session.scalars(
        select(Payment)
        .where(this_payment)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if note.sequence <= payment.provider_sequence:
        log.info("payment.notification_stale", payment_id=str(payment.id), seq=note.sequence)
        return payment
    _check_matches(note, payment, order)
    providers = providers or {provider.name: provider}
    record_provider_state(session, order, payment, note.status, sequence=note.sequence)
    _cancel_late_payment(session, order, providers=providers)
    if order.status is OrderStatus.CANCELLED and payment.status is PaymentStatus.CAPTURED:
        refundable = payment.amount - payment.refunded_amount
        if refundable:
            refund_payment(
                session,
                order,
                payment,
                refundable,
                RefundReason.CANCELLED,
                providers=providers,
            )
    return payment


def _check_matches(note: PaymentNotification, payment: Payment, order: Order) -> None:
    """Refuse (422, naming the field) a notification that is not about this payment's money:
    another payment or order, another currency, or another amount authorised or captured.
    Applying it would count money we did not ask for; it is logged for HQ to follow up."""
    taken = {
        ProviderStatus.AUTHORIZED: ("authorized_fen", note.authorized_fen),
        ProviderStatus.CAPTURED: ("captured_fen", note.captured_fen),
    }
    expected: list[tuple[str, object, object]] = [
        ("payment_id", note.payment_id, payment.id),
        ("order_id", note.order_id, order.id),
        ("currency", note.currency, order.currency),
    ]
    if note.status in taken:
        field, amount = taken[note.status]
        expected.append((field, amount, payment.amount))
    for field, got, wanted in expected:
        if got != wanted:
            log.error(
                "payment.notification_mismatch",
                payment_id=str(payment.id),
                field=field,
                notified=str(got),
                expected=str(wanted),
            )
            raise InvalidInput.field(field, f"is {got}; payment {payment.id} has {wanted}")


def _cancel_late_payment(
    session: Session, order: Order, *, providers: Mapping[str, PaymentProvider]
) -> bool:
    """Cancel an order paid in full that :func:`settle_if_paid` would not mark paid (its stock
    hold ended first), refunding every tender at once: the money cannot buy the goods now."""
    if order.status is not OrderStatus.CREATED or order.paid_amount < order.total:
        return False
    cancel_order(session, order.id, reason="paid after its stock hold ended", providers=providers)
    return True
