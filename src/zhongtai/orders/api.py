"""HTTP endpoints of an order's life after checkout: list and find orders, read one with its
payments and refunds, cancel it, follow its events and track it.

Checkout, payments and returns have routers of their own (``api_checkout``, ``api_payments``,
``api_returns``); what they share is in ``api_common``.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params, paginate
from zhongtai.core.settings import Settings
from zhongtai.fulfillment import cancellation
from zhongtai.fulfillment.models import CourierDispatch
from zhongtai.fulfillment.pickup import pickup_ticket
from zhongtai.integrations.api_stream import event_stream
from zhongtai.integrations.stream import parse_last_event_id
from zhongtai.orders.api_common import READ, customers, ensure_may_see, providers_of
from zhongtai.orders.kinds import OrderStatus, SalesChannel
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Order, OrderStatusChange, Payment, Refund
from zhongtai.orders.schemas import (
    CancelIn,
    CourierOut,
    OrderOut,
    PaymentOut,
    PickupTicketOut,
    RefundOut,
    TimelineEntryOut,
    TrackingOut,
)
from zhongtai.orders.uncollected_orders import collect_by

router = api_router(tags=["orders"])


@router.get("/orders", response_model=Page[OrderOut])
def list_orders(
    store_id: uuid.UUID | None = None,
    status_: OrderStatus | None = Query(None, alias="status"),
    member_id: uuid.UUID | None = None,
    principal: Principal = READ,
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[OrderOut]:
    """Orders in the order they were placed: a store's (staff), a channel's (keys), or the
    chain's (HQ)."""
    stmt = select(Order)
    if store_id is not None:
        principal.ensure_store(store_id)
        stmt = stmt.where(Order.store_id == store_id)
    elif principal.store_ids is not None:
        stmt = stmt.where(Order.store_id.in_(principal.store_ids))
    if principal.channel is not None:
        stmt = stmt.where(Order.channel == SalesChannel(principal.channel.value))
    if status_ is not None:
        stmt = stmt.where(Order.status == status_)
    if member_id is not None:
        stmt = stmt.where(Order.member_id == member_id)
    rows, cursor = paginate(session, stmt, [Order.id], page)
    return Page(items=[OrderOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/orders/lookup", response_model=OrderOut)
def lookup_order(
    number: str | None = Query(None, max_length=40),
    receipt_number: str | None = Query(None, max_length=72),
    principal: Principal = Depends(require(Permission.ORDERS_RETURN)),
    session: Session = Depends(db_session),
) -> Any:
    """Find an order by its number or receipt number, in any store: returns are taken
    anywhere, so the counter must find what another store or the app sold."""
    if number is None and receipt_number is None:
        raise InvalidInput.field("number", "give the order number or the receipt number")
    stmt = select(Order)
    stmt = (
        stmt.where(Order.number == number.strip().upper())
        if number
        else stmt.where(Order.receipt_number == (receipt_number or "").strip())
    )
    order = session.scalars(stmt).one_or_none()
    if order is None:
        raise NotFound("No such order.")
    return order


@router.get("/orders/{order_id}", response_model=OrderOut)
def read_order(
    order_id: uuid.UUID, principal: Principal = READ, session: Session = Depends(db_session)
) -> Any:
    order = get_order(session, order_id)
    ensure_may_see(principal, order)
    return order


@router.get("/orders/{order_id}/payments", response_model=list[PaymentOut])
def order_payments(
    order_id: uuid.UUID, principal: Principal = READ, session: Session = Depends(db_session)
) -> Any:
    ensure_may_see(principal, get_order(session, order_id))
    return session.scalars(
        select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)
    ).all()


@router.get("/orders/{order_id}/refunds", response_model=list[RefundOut])
def order_refunds(
    order_id: uuid.UUID, principal: Principal = READ, session: Session = Depends(db_session)
) -> Any:
    ensure_may_see(principal, get_order(session, order_id))
    return session.scalars(
        select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)
    ).all()


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
def cancel_order(
    order_id: uuid.UUID,
    body: CancelIn,
    request: Request,
    principal: Principal = READ,
    session: Session = Depends(db_session),
) -> Any:
    """Cancel before the goods leave the store: the stock goes back, payments are refunded.
    The customer's channel or the store may cancel; after handover it is a return (409)."""
    order = get_order(session, order_id)
    ensure_may_see(principal, order)
    if not (principal.can(Permission.ORDERS_PLACE) or principal.can(Permission.ORDERS_FULFIL)):
        principal.require(Permission.ORDERS_PLACE)
    cancelled = cancellation.cancel_order(
        session, order_id, reason=body.reason, providers=providers_of(request)
    )
    return customers(request, cancelled)


@router.get(
    "/orders/{order_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def follow_order(
    order_id: uuid.UUID,
    request: Request,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    follow: bool = Query(True, description="false: end once caught up."),
    principal: Principal = READ,
    session: Session = Depends(db_session),
) -> StreamingResponse:
    """The order's events as they happen (Server-Sent Events): paid, picking, ready for
    pickup, out for delivery, the rider's progress, completed. Resumes with Last-Event-ID."""
    ensure_may_see(principal, get_order(session, order_id))
    return event_stream(
        request,
        parse_last_event_id(last_event_id),
        None,
        None,
        follow=follow,
        aggregate=("order", str(order_id)),
    )


@router.get("/orders/{order_id}/tracking", response_model=TrackingOut)
def track_order(
    order_id: uuid.UUID,
    principal: Principal = READ,
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> TrackingOut:
    """The customer's view: status timeline, promised times, the pickup code while the order
    waits in the store, and the rider's progress."""
    order = get_order(session, order_id)
    ensure_may_see(principal, order)
    timeline = session.scalars(
        select(OrderStatusChange)
        .where(OrderStatusChange.order_id == order.id)
        .order_by(OrderStatusChange.occurred_at, OrderStatusChange.id)
    ).all()
    dispatch = session.scalars(
        select(CourierDispatch)
        .where(CourierDispatch.order_id == order.id)
        .order_by(CourierDispatch.id.desc())
    ).first()
    ticket = pickup_ticket(order, settings)
    ready = [x.occurred_at for x in timeline if x.to_status == OrderStatus.READY_FOR_PICKUP.value]
    return TrackingOut(
        order_id=order.id,
        number=order.number,
        status=order.status,
        fulfillment_type=order.fulfillment_type,
        store_id=order.store_id,
        promised_ready_at=order.promised_ready_at,
        promised_by=order.promised_by,
        timeline=[TimelineEntryOut.model_validate(x) for x in timeline],
        pickup=(
            PickupTicketOut(
                code=ticket.code,
                qr_payload=ticket.qr_payload,
                collect_by=collect_by(order.fulfillment_type, ready[-1]),
            )
            if ticket and ready
            else None
        ),
        courier=(
            CourierOut(
                provider=dispatch.provider,
                status=dispatch.status.value,
                rider=dispatch.rider,
                estimated_delivery_at=dispatch.estimated_delivery_at,
                delivered_at=dispatch.delivered_at,
            )
            if dispatch
            else None
        ),
    )
