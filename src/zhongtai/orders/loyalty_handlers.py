"""What an order's life means for the member's points and coupons: points when an order
completes, taken back (and its coupons restored) when goods come back, coupons freed when an
order is cancelled; nothing given back to a member erased meanwhile (forfeited, audited). Run by
the relay exactly once per event (the consumer names are loyalty's, kept from when these
handlers lived there, so no event is handled twice)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
from zhongtai.core.settings import get_settings
from zhongtai.integrations.handlers import PublishedEvent, on_event
from zhongtai.loyalty.accounts import Source
from zhongtai.loyalty.coupon_use import give_back_coupons, release_coupons, restore_coupons_of
from zhongtai.loyalty.models import SourceType
from zhongtai.loyalty.settings import loyalty_settings
from zhongtai.members.errors import MemberErased
from zhongtai.orders.kinds import OrderStatus, SalesChannel
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Order
from zhongtai.orders.points import earn_for_order, reverse_for_return


@on_event("order.completed", consumer="loyalty.points_for_order")
def points_for_completed_order(event: PublishedEvent, session: Session) -> None:
    if event.payload.get("member_id") is None:
        return
    settings = get_settings()
    earn_for_order(
        session,
        uuid.UUID(event.payload["order_id"]),
        points_per_yuan=settings.points_per_yuan,
        at=event.occurred_at,
        valid_for=timedelta(days=settings.points_valid_days),
        pending_for=loyalty_settings().points_pending_for,
    )


@on_event("order.returned", consumer="loyalty.points_for_return")
def points_and_coupons_for_return(event: PublishedEvent, session: Session) -> None:
    order_id = event.payload["order_id"]
    if event.payload.get("member_id") is None:
        return
    reverse_for_return(
        session,
        uuid.UUID(order_id),
        uuid.UUID(event.payload["return_id"]),
        int(event.payload["refund_total"]),
        at=event.occurred_at,
    )
    if event.payload["status"] == OrderStatus.RETURNED.value:
        order = get_order(session, uuid.UUID(order_id))
        _coupons_back(session, order, cancelled=False, at=event.occurred_at)


@on_event("order.cancelled", consumer="loyalty.coupons_for_cancellation")
def coupons_for_cancelled_order(event: PublishedEvent, session: Session) -> None:
    """The checkout's held coupons go back (``quote:<id>`` locks) and so do coupons the order
    had already redeemed, when still valid (not to a member erased meanwhile)."""
    order = get_order(session, uuid.UUID(event.payload["order_id"]))
    _coupons_back(session, order, cancelled=True, at=event.occurred_at)
    if order.quote_id is not None:
        release_coupons(session, f"quote:{order.quote_id}", at=event.occurred_at)


def _redeemed_as(order: Order) -> list[Source]:
    """What its coupons were redeemed as: the order when it was paid, and for a till's sale also
    the sale under the order's id (a till redeems a coupon tender itself, as ``pos_sale``)."""
    sources = [Source(SourceType.ORDER, str(order.id))]
    if order.channel is SalesChannel.POS:
        sources.append(Source(SourceType.POS_SALE, str(order.id)))
    return sources


def _coupons_back(session: Session, order: Order, *, cancelled: bool, at: datetime) -> None:
    """Give the coupons the order used back to its member (all still valid when it was
    cancelled, those whose template says so when it was returned in full). A member erased
    since gets none: they stay used, and the audit log records them as forfeited against the
    order, as ``points.forfeited`` records points a refund could not give back. Her lock is
    taken before any coupon row, as a merge takes them."""
    redeemed_as = _redeemed_as(order)
    if order.member_id is None:
        restore_coupons_of(session, *redeemed_as, at=at, cancelled=cancelled)
        return
    back = give_back_coupons(session, order.member_id, *redeemed_as, at=at, cancelled=cancelled)
    if not back.forfeited:
        return
    facts = {
        "member_id": order.member_id,
        "coupon_ids": back.forfeited,
        "on": "cancelled" if cancelled else "returned",
        "reason": MemberErased.slug,
    }
    record_audit(
        session, "coupons.forfeited", "order", order.id, None, facts, store_id=order.store_id
    )
