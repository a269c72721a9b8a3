"""Giving money back: a refund split over the order's original tenders, each at its provider
(idempotent by the refund's id), from the till for cash, or as points for points (forfeited,
and recorded so, when the member was erased)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
from zhongtai.core.errors import Conflict
from zhongtai.core.ids import replayable_id
from zhongtai.core.outbox import record_event
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.loyalty.models import SourceType
from zhongtai.loyalty.service import Source, give_back_points
from zhongtai.members.errors import MemberErased
from zhongtai.orders.events import PaymentRefunded
from zhongtai.orders.kinds import TenderType
from zhongtai.orders.models import Order, Payment, PaymentStatus, Refund, RefundReason
from zhongtai.orders.settings import order_settings
from zhongtai.orders.tender_rules import PaidTender, points_given_back, refund_plan


def _paid_tenders(session: Session, order: Order) -> list[PaidTender]:
    rows = session.scalars(
        select(Payment)
        .where(Payment.order_id == order.id, Payment.status == PaymentStatus.CAPTURED)
        .order_by(Payment.captured_at, Payment.id)
    )
    return [PaidTender(p.id, p.tender, p.amount, p.refunded_amount) for p in rows]


def provider_of(payment: Payment, providers: Mapping[str, PaymentProvider]) -> PaymentProvider:
    """The provider that took ``payment``; 409 when this installation has none by its name."""
    provider = providers.get(payment.provider or "")
    if provider is None:
        raise Conflict(f"Payment provider {payment.provider} is not configured here.")
    return provider


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
        id=_refund_id(session, order, payment, amount, reason, return_id),
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
    forfeited = 0
    if payment.tender is TenderType.POINTS and order.member_id is not None:
        forfeited = _give_back_points(session, order, order.member_id, payment, refund)
    elif payment.provider is not None and payment.provider_ref is not None:
        provider_of(payment, providers).refund(payment.provider_ref, refund.id, amount)
    record_event(
        session,
        PaymentRefunded(
            refund_id=refund.id,
            payment_id=payment.id,
            order_id=order.id,
            tender=payment.tender.value,
            amount=amount,
            reason=reason.value,
            points_forfeited=forfeited,
        ),
        aggregate_type="order",
        aggregate_id=order.id,
        store_id=order.store_id,
    )
    return refund


def _give_back_points(
    session: Session, order: Order, member_id: uuid.UUID, payment: Payment, refund: Refund
) -> int:
    """Points paid are given back as points (a new lot), never as money. An erased member has
    no account to take them: the refund still stands (the tender is settled, the order's
    money goes back), and the points are forfeited, which the audit log records against the
    order with the refund it belongs to. Answers the points forfeited (0 when given back)."""
    rate = order_settings().points_per_yuan_off
    points = points_given_back(payment.refunded_amount - refund.amount, refund.amount, rate)
    if not points:  # a fen worth less than a point gives back none until its neighbours come
        return 0
    given = give_back_points(
        session,
        member_id,
        Source(SourceType.RETURN, f"refund:{refund.id}"),
        points,
        store_id=order.store_id,
    )
    if given is not None:
        return 0
    facts = {
        "refund_id": refund.id,
        "payment_id": payment.id,
        "member_id": member_id,
        "points": points,
        "amount": refund.amount,
        "refund_reason": refund.reason,
        "reason": MemberErased.slug,
    }
    record_audit(
        session, "points.forfeited", "order", order.id, None, facts, store_id=order.store_id
    )
    return points


def _refund_id(
    session: Session,
    order: Order,
    payment: Payment,
    amount: int,
    reason: RefundReason,
    return_id: uuid.UUID | None,
) -> uuid.UUID:
    """The refund's id, the provider's idempotency key for it: the same for the same refund
    (the order's refunds so far, the tender, amount, reason and return), so a step retried
    after its transaction was lost refunds once, and a new refund gets a new id."""
    earlier = session.scalar(
        select(func.count()).select_from(Refund).where(Refund.order_id == order.id)
    )
    return replayable_id(
        order.placed_at, earlier or 0, "refund", payment.id, amount, reason, return_id
    )


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
