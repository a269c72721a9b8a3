"""HTTP endpoints of checkout and orders: quote, place, pay, cancel, return, track."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission
from zhongtai.core.errors import Forbidden, InvalidInput, NotFound
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router, request_body
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params, paginate
from zhongtai.core.settings import Settings
from zhongtai.fulfillment.models import CourierDispatch
from zhongtai.fulfillment.pickup import pickup_ticket
from zhongtai.integrations.api_stream import event_stream
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.stream import parse_last_event_id
from zhongtai.members.pii import cipher_for
from zhongtai.members.rules import mask_phone
from zhongtai.orders import checkout, payments, returns
from zhongtai.orders.kinds import OrderStatus, SalesChannel, TenderType
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Order, OrderStatusChange, Payment, Refund
from zhongtai.orders.schemas import (
    CancelIn,
    CourierOut,
    OrderOut,
    PaymentIn,
    PaymentOut,
    PickupTicketOut,
    PlaceOrderIn,
    QuoteIn,
    QuoteOut,
    RefundOut,
    ReturnIn,
    ReturnOut,
    StartedPaymentOut,
    TimelineEntryOut,
    TrackingOut,
)

router = api_router(tags=["orders"])
READ = Depends(require(Permission.ORDERS_READ))
PLACE = Depends(require(Permission.ORDERS_PLACE))


def providers_of(request: Request) -> Providers:
    found: Providers = request.app.state.providers
    return found


def callback_url(request: Request, settings: Settings, path: str) -> str:
    """Where a provider calls back: the public URL when set, else this request's own base."""
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + "/api/v1" + path


def sales_channel(principal: Principal, asked: SalesChannel | None) -> SalesChannel:
    """A channel key sells on its own channel (the app and mini-program also carry a guide's
    share links); staff name the channel they sell for."""
    if principal.channel is None:
        if asked is None:
            raise InvalidInput.field("channel", "staff name the sales channel of the order")
        return asked
    own = SalesChannel(principal.channel.value)
    if asked is None or asked is own:
        return own
    if asked is SalesChannel.GUIDE_SHARE and principal.channel in (
        Channel.APP,
        Channel.MINI_PROGRAM,
    ):
        return asked
    raise InvalidInput.field("channel", f"a {own.value} key sells on its own channel")


def ensure_may_see(principal: Principal, order: Order) -> None:
    """Staff see their stores' orders; a channel key sees the orders of its channel."""
    if principal.channel is not None:
        mine = {principal.channel.value}
        if principal.channel in (Channel.APP, Channel.MINI_PROGRAM):
            mine.add(SalesChannel.GUIDE_SHARE.value)
        if order.channel.value not in mine:
            raise Forbidden(
                f"Order {order.number} was not placed on the {principal.channel} channel."
            )
        if principal.store_ids is not None:
            principal.ensure_store(order.store_id)
        return
    principal.ensure_store(order.store_id)


@router.post("/checkout/quotes", response_model=QuoteOut, status_code=status.HTTP_201_CREATED)
def create_quote(
    body: QuoteIn,
    principal: Principal = PLACE,
    session: Session = Depends(db_session),
) -> Any:
    """Price a basket for a fulfilment type, choose the store (the answer explains why, for
    every candidate), promise when it is ready or at the door, and hold its stock until the
    quote expires. 409 ``no-store-can-fulfil`` with the verdicts when no store can."""
    return checkout.quote_checkout(
        session,
        checkout.QuoteRequest(
            channel=sales_channel(principal, body.channel),
            fulfillment_type=body.fulfillment_type,
            lines=[x.line() for x in body.lines],
            services=tuple(body.services),
            address=body.address.address() if body.address else None,
            store_id=body.store_id,
            member_id=body.member_id,
            coupon_ids=body.coupon_ids,
        ),
        caller=principal,
    )


@router.get("/checkout/quotes/{quote_id}", response_model=QuoteOut)
def get_quote(
    quote_id: uuid.UUID, principal: Principal = PLACE, session: Session = Depends(db_session)
) -> Any:
    return checkout.get_quote(session, quote_id)


@router.delete("/checkout/quotes/{quote_id}", status_code=status.HTTP_204_NO_CONTENT)
def release_quote(
    quote_id: uuid.UUID, principal: Principal = PLACE, session: Session = Depends(db_session)
) -> Response:
    """The customer left the checkout: the held stock is available again at once."""
    checkout.release_quote(session, checkout.get_quote(session, quote_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/orders",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Placed before (same quote or channel order id)."}},
)
def place_order(
    body: PlaceOrderIn,
    response: Response,
    principal: Principal = PLACE,
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> Any:
    """Place the order of a quote. Idempotent by quote, by ``channel_order_id`` and by the
    Idempotency-Key. Unpaid orders are cancelled when their quote's hold ends."""
    sealed = masked = None
    if body.contact_phone:
        sealed = cipher_for(settings).encrypt(body.contact_phone, purpose="order_contact")
        masked = mask_phone(body.contact_phone)
    placed = checkout.place_order(
        session,
        checkout.PlaceOrder(
            quote_id=body.quote_id,
            channel_order_id=body.channel_order_id,
            contact_name=body.contact_name,
            contact_phone_masked=masked,
            contact_phone_sealed=sealed,
            note=body.note,
            substitution=body.substitution,
            guide_id=body.guide_id,
            address_text=body.address_text,
        ),
        caller=principal,
    )
    if not placed.created:
        response.status_code = status.HTTP_200_OK
    return placed.order


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


@router.post(
    "/orders/{order_id}/payments",
    response_model=StartedPaymentOut,
    status_code=status.HTTP_201_CREATED,
)
def pay_order(
    order_id: uuid.UUID,
    body: PaymentIn,
    request: Request,
    principal: Principal = PLACE,
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> Any:
    """Pay (part of) an order online. A wallet answers ``pending`` with the ``customer_action``
    to show; the provider's signed notification completes it and the order becomes paid.
    ``{"tender": "points", "points": N}`` pays part with the member's points, at once."""
    ensure_may_see(principal, get_order(session, order_id))
    if body.tender is TenderType.POINTS:
        if body.points is None:
            raise InvalidInput.field("points", "how many points to pay with")
        return StartedPaymentOut.model_validate(
            payments.pay_with_points(session, order_id, body.points)
        )
    providers = providers_of(request)
    started = payments.start_payment(
        session,
        order_id,
        tender=body.tender,
        amount=body.amount,
        provider=providers.payment(body.provider),
        notify_url=callback_url(request, settings, f"/payments/notifications/{body.provider}"),
    )
    out = StartedPaymentOut.model_validate(started.payment)
    out.customer_action = started.customer_action
    return out


@router.post("/payments/notifications/{provider}", status_code=status.HTTP_204_NO_CONTENT)
def payment_notification(
    provider: str,
    request: Request,
    body: bytes = Depends(request_body),
    session: Session = Depends(db_session),
) -> Response:
    """Where payment providers call back (signed; see docs/orders.md). Repeated and stale
    notifications change nothing; the answer is 204 either way so the provider stops."""
    providers = providers_of(request)
    payments.apply_notification(
        session,
        providers.payment(provider),
        dict(request.headers),
        body,
        providers=providers.payments,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sandbox/payments/{provider_ref}/confirm", status_code=status.HTTP_204_NO_CONTENT)
def sandbox_customer_confirms(
    provider_ref: str, request: Request, principal: Principal = PLACE
) -> Response:
    """Sandbox only: play the customer approving a pending wallet payment in WeChat/Alipay.
    The sandbox then calls back (signed) and the order becomes paid."""
    gateway = providers_of(request).payment("sandbox")
    confirm = getattr(gateway, "customer_confirms", None)
    if confirm is None:
        raise NotFound("The sandbox payment gateway is not running here.")
    confirm(provider_ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
    return payments.cancel_order(
        session, order_id, reason=body.reason, providers=providers_of(request).payments
    )


@router.post(
    "/orders/{order_id}/returns",
    response_model=ReturnOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "This return reference was taken before: the same return."}},
)
def return_goods(
    order_id: uuid.UUID,
    body: ReturnIn,
    request: Request,
    response: Response,
    principal: Principal = Depends(require(Permission.ORDERS_RETURN)),
    session: Session = Depends(db_session),
) -> Any:
    """Take goods back at any store: resellable ones return to that store's stock, damaged
    ones are written off, and the refund goes to the original tenders."""
    done = returns.return_goods(
        session,
        order_id,
        reference=body.reference,
        store_id=body.store_id,
        lines=[returns.ReturnLine(x.line_id, x.quantity, x.condition) for x in body.lines],
        reason=body.reason,
        caller=principal,
        providers=providers_of(request).payments,
    )
    if not done.created:
        response.status_code = status.HTTP_200_OK
    out = ReturnOut.model_validate(done.order_return)
    out.refunds = [
        RefundOut.model_validate(r)
        for r in session.scalars(
            select(Refund).where(Refund.return_id == done.order_return.id).order_by(Refund.id)
        )
    ]
    return out


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
    return TrackingOut(
        order_id=order.id,
        number=order.number,
        status=order.status,
        fulfillment_type=order.fulfillment_type,
        store_id=order.store_id,
        promised_ready_at=order.promised_ready_at,
        promised_by=order.promised_by,
        timeline=[TimelineEntryOut.model_validate(x) for x in timeline],
        pickup=PickupTicketOut(code=ticket.code, qr_payload=ticket.qr_payload) if ticket else None,
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
