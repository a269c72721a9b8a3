"""Points for orders of every channel: earned when the order completes, taken back on return.

Orders turn an order into the sale loyalty prices (its goods' nets, its money tenders, its
channel, store and time) and hand it to loyalty's ledger; loyalty knows nothing of orders, so
the dependency runs one way (orders already uses loyalty for coupons and points tenders).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.categories import sku_category_lineages
from zhongtai.core.clock import utcnow
from zhongtai.loyalty import rules
from zhongtai.loyalty.accounts import Booked, Source, recorded
from zhongtai.loyalty.earning import earn_for_sale
from zhongtai.loyalty.ledger import DEFAULT_VALIDITY, reverse_points
from zhongtai.loyalty.models import EntryKind, SourceType
from zhongtai.members import service as members
from zhongtai.members.models import MemberStatus
from zhongtai.orders.kinds import LineKind
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Payment, PaymentStatus


def order_source(order_id: uuid.UUID) -> Source:
    """One order, one earning, whichever channel sold it (a till sale is an order too)."""
    return Source(SourceType.ORDER, str(order_id))


def earn_for_order(
    session: Session,
    order_id: uuid.UUID,
    *,
    points_per_yuan: int,
    at: datetime | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
    pending_for: timedelta = timedelta(0),
) -> Booked | None:
    """Credit the member what her completed order earns: the goods' net amounts (after
    discounts, less short-pick refunds), money tenders only, at HQ's earn rules (each line's
    nearest category rule; the campaign running when she placed the order in its channel and
    store) and her tier's multiplier. None for an order without a member (or whose member was
    erased). Booked once per order, however often the completion is delivered.

    With ``pending_for`` (the return window) the points are pending until the order's
    completion plus that long: not spendable, and a return inside the window takes them back
    before anything she holds.
    """
    order = get_order(session, order_id)
    if order.member_id is None:
        return None
    if members.get_member(session, order.member_id).status is MemberStatus.ERASED:
        return None  # erased before her order completed: nobody is left to credit
    goods = [line for line in order.lines if line.kind is LineKind.GOODS]
    lineages = sku_category_lineages(
        session, {line.sku_id for line in goods if line.sku_id is not None}
    )
    lines = []
    for line in goods:
        lineage = [str(c) for c in lineages.get(line.sku_id, [])] if line.sku_id else []
        lines.append(
            rules.SaleLine(
                line.net_amount - line.short_refund,
                lineage[0] if lineage else None,
                tuple(lineage[1:]),
            )
        )
    tenders = [
        rules.Tender(rules.TenderKind(tender.value), amount - refunded)
        for tender, amount, refunded in session.execute(
            select(Payment.tender, Payment.amount, Payment.refunded_amount).where(
                Payment.order_id == order_id, Payment.status == PaymentStatus.CAPTURED
            )
        )
    ]
    completed_at = order.completed_at or at or utcnow()
    return earn_for_sale(
        session,
        order.member_id,
        order_source(order_id),
        lines,
        tenders,
        points_per_yuan=points_per_yuan,
        channel=order.channel.value,
        store_id=order.store_id,
        bought_at=order.placed_at,
        at=at or completed_at,
        valid_for=valid_for,
        pending_until=completed_at + pending_for if pending_for > timedelta(0) else None,
    )


def reverse_for_return(
    session: Session,
    order_id: uuid.UUID,
    return_id: uuid.UUID,
    refunded_fen: int,
    *,
    at: datetime | None = None,
) -> Booked | None:
    """Take back the points of returned goods in proportion to the refund; None when the order
    earned nothing to take back (no member, or it was never credited)."""
    order = get_order(session, order_id)
    if order.member_id is None or refunded_fen <= 0:
        return None
    earned_by = order_source(order_id)
    # Her survivor's books, which include hers: an order written while a merge ran may still
    # name the merged id, while its points were booked on the survivor.
    member_id = members.get_member(session, order.member_id).id
    if recorded(session, member_id, earned_by, EntryKind.EARN) is None:
        return None
    return reverse_points(
        session,
        member_id,
        Source(SourceType.RETURN, str(return_id)),
        earned_by=earned_by,
        returned_fen=refunded_fen,
        at=at,
        clip=True,
    )
