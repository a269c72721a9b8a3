"""What an order's life means for the member's points and coupons: points when an order
completes, taken back (and its coupons restored) when goods come back, coupons freed when an
order is cancelled. Run by the relay exactly once per event (the consumer names are loyalty's,
kept from when these handlers lived there, so no event is handled twice)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from zhongtai.core.settings import get_settings
from zhongtai.integrations.handlers import PublishedEvent, on_event
from zhongtai.loyalty.coupon_use import release_coupons, restore_coupons_of
from zhongtai.loyalty.settings import loyalty_settings
from zhongtai.orders.kinds import OrderStatus
from zhongtai.orders.lifecycle import get_order
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
        restore_coupons_of(session, str(order_id), at=event.occurred_at)


@on_event("order.cancelled", consumer="loyalty.coupons_for_cancellation")
def coupons_for_cancelled_order(event: PublishedEvent, session: Session) -> None:
    """The checkout's held coupons go back (``quote:<id>`` locks) and so do coupons the order
    had already redeemed, when still valid."""
    order_id = uuid.UUID(event.payload["order_id"])
    quote_id = get_order(session, order_id).quote_id
    if quote_id is not None:
        release_coupons(session, f"quote:{quote_id}", at=event.occurred_at)
    restore_coupons_of(session, str(order_id), at=event.occurred_at, cancelled=True)
