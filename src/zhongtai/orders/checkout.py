"""Checkout: quote a basket (source, price, promise, hold its stock), then place the order."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.lookup import sku_prices
from zhongtai.core import context
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import record_event
from zhongtai.fulfillment.planning import Address, PlanRequest, RequestedLine, plan_sourcing
from zhongtai.inventory.reservations import release_reservation, reserve
from zhongtai.inventory.rules import Line
from zhongtai.loyalty.service import lock_coupon, offers_for_basket
from zhongtai.orders.errors import NoStoreCanFulfil, QuoteExpired
from zhongtai.orders.events import OrderCreated, OrderLineFacts
from zhongtai.orders.kinds import (
    FulfillmentType,
    LineKind,
    OrderStatus,
    SalesChannel,
    SubstitutionPreference,
)
from zhongtai.orders.lifecycle import note_status, order_facts
from zhongtai.orders.models import Order, OrderLine, Quote
from zhongtai.orders.numbers import next_order_number
from zhongtai.orders.pricing_rules import BasketLine
from zhongtai.orders.settings import order_settings

MAX_LINES = 100

#: The price list each sales channel sells at (a guide's share link opens in the mini-program).
PRICE_CHANNEL: dict[SalesChannel, Channel] = {
    SalesChannel.POS: Channel.POS,
    SalesChannel.APP: Channel.APP,
    SalesChannel.MINI_PROGRAM: Channel.MINI_PROGRAM,
    SalesChannel.MARKETPLACE: Channel.MARKETPLACE,
    SalesChannel.GUIDE_SHARE: Channel.MINI_PROGRAM,
}

#: Online fulfilment types a checkout quotes; a till sale goes through the POS instead.
ONLINE_TYPES = frozenset(
    {
        FulfillmentType.DELIVERY,
        FulfillmentType.PICKUP,
        FulfillmentType.SHIP,
        FulfillmentType.RESERVE_TRY,
    }
)


@dataclass(frozen=True)
class QuoteRequest:
    channel: SalesChannel
    fulfillment_type: FulfillmentType
    lines: Sequence[Line]
    services: Sequence[str] = ()
    address: Address | None = None
    store_id: uuid.UUID | None = None
    member_id: uuid.UUID | None = None
    coupon_ids: Sequence[uuid.UUID] = ()


def _check_request(request: QuoteRequest) -> None:
    if request.fulfillment_type not in ONLINE_TYPES:
        raise InvalidInput.field(
            "fulfillment_type",
            "a checkout quotes delivery, pickup, ship or reserve_try; till sales use /pos/sales",
        )
    if request.channel is SalesChannel.POS:
        raise InvalidInput.field("channel", "the POS sells through /pos/sales, not a checkout")
    if not request.lines:
        raise InvalidInput.field("lines", "add at least one line")
    if request.coupon_ids and request.member_id is None:
        raise InvalidInput.field("coupon_ids", "coupons are a member's: give member_id")
    if len(request.lines) > MAX_LINES:
        raise InvalidInput.field("lines", f"at most {MAX_LINES} lines")
    seen: set[uuid.UUID] = set()
    for i, line in enumerate(request.lines):
        if line.quantity <= 0:
            raise InvalidInput.field(f"lines[{i}].quantity", "must be 1 or more")
        if line.sku_id in seen:
            raise InvalidInput.field(f"lines[{i}].sku_id", "appears twice; add the quantities")
        seen.add(line.sku_id)
    if request.fulfillment_type is FulfillmentType.DELIVERY and request.address is None:
        raise InvalidInput.field("address", "delivery needs the address's latitude and longitude")
    if request.fulfillment_type is FulfillmentType.SHIP and request.address is None:
        raise InvalidInput.field("address", "a parcel needs an address")
    if (
        request.fulfillment_type in (FulfillmentType.PICKUP, FulfillmentType.RESERVE_TRY)
        and request.store_id is None
        and request.address is None
    ):
        raise InvalidInput.field("store_id", "name the store, or give an address to find one")


def _price_lines(
    session: Session,
    caller: Principal,
    request: QuoteRequest,
    located: Sequence[tuple[uuid.UUID, Line]],
    store_id: uuid.UUID,
    now: datetime,
) -> tuple[list[dict[str, Any]], Any, str, dict[str, Any]]:
    """Price every goods line at the store that sells it, plus the service lines (free), then
    apply the live promotions and the member's coupons (loyalty's offers engine), spread over
    the lines so returns, points and commission see each line's net."""
    channel = PRICE_CHANNEL[request.channel]
    basket: list[BasketLine] = []
    rows: list[dict[str, Any]] = []
    currency = "CNY"
    # One statement for the whole basket, not one per line.
    prices = sku_prices(
        session,
        [line.sku_id for _, line in located],
        caller=_pricing_caller(caller),
        store_id=store_id,
        channel=channel,
        at=now,
    )
    for i, (location_id, line) in enumerate(located):
        priced = prices[line.sku_id]
        if not priced.for_sale:
            raise InvalidInput.field(f"lines[{i}].sku_id", f"SKU {priced.sku.code} is not for sale")
        currency = priced.sku.currency
        basket.append(
            BasketLine(
                sku_id=line.sku_id,
                unit_price=priced.price.amount,
                price_per=priced.sku.price_per,
                quantity=line.quantity,
            )
        )
        rows.append({"sku_id": str(line.sku_id), "location_id": str(location_id), "service": None})
    for service in request.services:
        basket.append(BasketLine(None, 0, 1, 1, LineKind.SERVICE))
        rows.append({"sku_id": None, "location_id": str(store_id), "service": service})
    settings = order_settings()
    fee_rule = (
        settings.delivery_fee_rule
        if request.fulfillment_type in (FulfillmentType.DELIVERY, FulfillmentType.SHIP)
        else None
    )
    offers = offers_for_basket(
        session,
        basket,
        channel=request.channel.value,
        store_id=store_id,
        now=now,
        member_id=request.member_id,
        coupon_ids=list(request.coupon_ids),
        delivery_fee_rule=fee_rule,
    )
    priced_basket = offers.basket
    for row, priced_line in zip(rows, priced_basket.lines, strict=True):
        row.update(
            kind=priced_line.kind.value,
            quantity=priced_line.quantity,
            unit_price=priced_line.unit_price,
            price_per=priced_line.price_per,
            amount=priced_line.amount,
            discount=priced_line.discount,
            net_amount=priced_line.net,
            discounts=[{"source": d.source, "amount": d.amount} for d in priced_line.discounts],
        )
    summary = {
        "explanations": [
            {
                "source": e.source,
                "name": e.name,
                "applied": e.applied,
                "amount": e.amount,
                "why": e.sentence,
            }
            for e in offers.explanations
        ],
        "coupons": [
            {"coupon_id": e.source.removeprefix("coupon:"), "amount": e.amount}
            for e in offers.explanations
            if e.applied and e.source.startswith("coupon:")
        ],
        "free_delivery": offers.free_delivery,
    }
    return rows, priced_basket, currency, summary


def _pricing_caller(caller: Principal) -> Principal:
    """Prices are public within the chain: a customer-facing key may see any store's price."""
    return (
        caller
        if caller.store_ids is None
        else Principal(
            kind=caller.kind,
            id=caller.id,
            name=caller.name,
            permissions=caller.permissions,
            store_ids=None,
            role=caller.role,
            channel=caller.channel,
        )
    )


def quote_checkout(
    session: Session, request: QuoteRequest, *, caller: Principal, now: datetime | None = None
) -> Quote:
    """Source, price and promise a basket, and hold its stock for the quote's lifetime.

    No store can fulfil it: 409 ``no-store-can-fulfil`` with every store's verdict. The
    holds are taken in the caller's transaction: if anything fails, nothing is held.
    """
    _check_request(request)
    now = now or utcnow()
    plan = plan_sourcing(
        session,
        PlanRequest(
            fulfillment_type=request.fulfillment_type,
            channel=request.channel.value,
            lines=[RequestedLine(x.sku_id, x.quantity) for x in request.lines],
            services=tuple(request.services),
            address=request.address,
            store_id=request.store_id,
        ),
        now=now,
    )
    if not plan.assignments:
        raise NoStoreCanFulfil(plan.summary, sourcing=plan.explanation)
    located = [(location_id, line) for location_id, lines in plan.assignments for line in lines]
    rows, priced, currency, offers = _price_lines(
        session, caller, request, located, plan.store_id, now
    )
    settings = order_settings()
    quote_id = new_id()
    for coupon in offers["coupons"]:
        lock_coupon(
            session,
            uuid.UUID(coupon["coupon_id"]),
            f"quote:{quote_id}",
            member_id=request.member_id,
            hold=timedelta(seconds=settings.quote_ttl_seconds),
            at=now,
        )
    expires_at = now + timedelta(seconds=settings.quote_ttl_seconds)
    reservation_ids = []
    for location_id, lines in plan.assignments:
        held = reserve(
            session,
            f"quote:{quote_id}:{location_id}",
            location_id,
            lines,
            timedelta(seconds=settings.quote_ttl_seconds),
            channel=request.channel.value,
            now=now,
        )
        reservation_ids.append(str(held.reservation.id))
    quote = Quote(
        id=quote_id,
        channel=request.channel,
        fulfillment_type=request.fulfillment_type,
        member_id=request.member_id,
        store_id=plan.store_id,
        currency=currency,
        subtotal=priced.subtotal,
        discount_total=priced.discount_total,
        delivery_fee=priced.delivery_fee,
        total=priced.total,
        lines=rows,
        address=request.address.as_json() if request.address else None,
        sourcing=plan.explanation,
        offers=offers,
        promised_ready_at=plan.ready_at,
        promised_by=plan.deliver_by,
        reservation_ids=reservation_ids,
        expires_at=expires_at,
        actor=context.actor.get(),
    )
    session.add(quote)
    session.flush()
    return quote


def get_quote(session: Session, quote_id: uuid.UUID) -> Quote:
    quote = session.get(Quote, quote_id)
    if quote is None:
        raise NotFound(f"No quote {quote_id}.", quote_id=str(quote_id))
    return quote


@dataclass(frozen=True)
class PlaceOrder:
    quote_id: uuid.UUID
    channel_order_id: str | None = None
    contact_name: str | None = None
    contact_phone_masked: str | None = None
    contact_phone_sealed: bytes | None = None
    note: str | None = None
    substitution: SubstitutionPreference = SubstitutionPreference.NONE
    guide_id: uuid.UUID | None = None
    address_text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Placed:
    order: Order
    created: bool


def _same_channel(caller: Principal, channel: SalesChannel) -> bool:
    """A channel key places only its own channel's quotes (a guide's share link sells through
    the app or the mini-program); staff may place any."""
    if caller.channel is None:
        return True
    if channel is SalesChannel.GUIDE_SHARE:
        return caller.channel in (Channel.APP, Channel.MINI_PROGRAM)
    return caller.channel.value == channel.value


def _existing_order(session: Session, channel: SalesChannel, channel_order_id: str) -> Order | None:
    return session.scalars(
        select(Order).where(Order.channel == channel, Order.channel_order_id == channel_order_id)
    ).one_or_none()


def place_order(
    session: Session, place: PlaceOrder, *, caller: Principal, now: datetime | None = None
) -> Placed:
    """Turn a quote into an order: its lines, prices, promise and stock holds.

    Idempotent twice over: a quote places one order (placing it again answers that order), and
    so does the channel's own order id. An expired quote answers 409 ``quote-expired``.
    """
    now = now or utcnow()
    quote = session.scalars(
        select(Quote).where(Quote.id == place.quote_id).with_for_update()
    ).one_or_none()
    if quote is None:
        raise NotFound(f"No quote {place.quote_id}.", quote_id=str(place.quote_id))
    if not _same_channel(caller, quote.channel):
        raise Conflict(
            f"Quote {quote.id} was made for the {quote.channel.value} channel.",
            quote_id=str(quote.id),
        )
    if quote.order_id is not None:
        return Placed(_order(session, quote.order_id), created=False)
    if place.channel_order_id is not None:
        earlier = _existing_order(session, quote.channel, place.channel_order_id)
        if earlier is not None:
            return Placed(earlier, created=False)
    if quote.expires_at <= now:
        raise QuoteExpired(
            f"Quote {quote.id} expired at {quote.expires_at.isoformat()}; its stock is no longer "
            "held. Ask for a new quote.",
            quote_id=str(quote.id),
        )
    order_id = new_id()
    address = dict(quote.address or {})
    if place.address_text:
        address["text"] = place.address_text
    needs_payment = quote.fulfillment_type is not FulfillmentType.RESERVE_TRY
    order = Order(
        id=order_id,
        number=next_order_number(now),
        channel=quote.channel,
        channel_order_id=place.channel_order_id,
        fulfillment_type=quote.fulfillment_type,
        status=OrderStatus.CREATED,
        store_id=quote.store_id,
        member_id=quote.member_id,
        guide_id=place.guide_id,
        quote_id=quote.id,
        substitution=place.substitution,
        currency=quote.currency,
        subtotal=quote.subtotal,
        discount_total=quote.discount_total,
        delivery_fee=quote.delivery_fee,
        total=quote.total,
        contact_name=place.contact_name,
        contact_phone_masked=place.contact_phone_masked,
        contact_phone_sealed=place.contact_phone_sealed,
        address=address or None,
        note=place.note,
        reservation_ids=list(quote.reservation_ids),
        offers=quote.offers,
        placed_at=now,
        payment_due_at=quote.expires_at if needs_payment else None,
        promised_ready_at=quote.promised_ready_at,
        promised_by=quote.promised_by,
        actor=context.actor.get(),
    )
    order.lines = [
        OrderLine(
            id=new_id(),
            line_no=i + 1,
            kind=LineKind(row["kind"]),
            sku_id=uuid.UUID(row["sku_id"]) if row["sku_id"] else None,
            service=row["service"],
            location_id=uuid.UUID(row["location_id"]),
            quantity=row["quantity"],
            unit_price=row["unit_price"],
            price_per=row["price_per"],
            amount=row["amount"],
            discount=row["discount"],
            net_amount=row["net_amount"],
        )
        for i, row in enumerate(quote.lines)
    ]
    session.add(order)
    quote.order_id = order_id
    session.flush()
    note_status(session, order, None, note=f"placed from quote {quote.id}")
    record_order_created(session, order)
    return Placed(order, created=True)


def record_order_created(session: Session, order: Order) -> None:
    record_event(
        session,
        OrderCreated(
            **order_facts(order),
            lines=[
                OrderLineFacts(
                    line_id=x.id,
                    sku_id=x.sku_id,
                    service=x.service,
                    location_id=x.location_id,
                    quantity=x.quantity,
                    net_amount=x.net_amount,
                )
                for x in order.lines
            ],
            channel_order_id=order.channel_order_id,
            promised_by=order.promised_by,
            guide_id=order.guide_id,
        ),
        aggregate_type="order",
        aggregate_id=order.id,
        store_id=order.store_id,
    )


def _order(session: Session, order_id: uuid.UUID) -> Order:
    order = session.get(Order, order_id)
    if order is None:  # a quote points at its order by a unique column; losing it is a bug
        raise RuntimeError(f"order {order_id} of a quote is missing")
    return order


def release_quote(session: Session, quote: Quote) -> None:
    """Let go of an unplaced quote's stock at once (the customer left the checkout)."""
    if quote.order_id is not None:
        raise Conflict(f"Quote {quote.id} became order {quote.order_id}; cancel the order.")
    for reservation_id in quote.reservation_ids:
        release_reservation(session, uuid.UUID(reservation_id))
