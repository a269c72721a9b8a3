"""Checkout: quote a basket (source, price, promise, hold its stock); ``placing`` turns a quote
into an order."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.categories import remembering_sku_lineages
from zhongtai.catalog.lookup import sku_prices
from zhongtai.core import context
from zhongtai.core.auth.principal import Principal
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.fulfillment.location_facts import Address
from zhongtai.fulfillment.planning import PlanRequest, RequestedLine, plan_sourcing
from zhongtai.inventory.allocation import remembering_allocations
from zhongtai.inventory.checks import require_skus
from zhongtai.inventory.reservations import release_reservation, reserve
from zhongtai.inventory.rules import Line
from zhongtai.loyalty.coupon_rules import CouponKind
from zhongtai.loyalty.offer_pricing import PricedOffers
from zhongtai.loyalty.promotion_rules import Explanation
from zhongtai.loyalty.service import (
    coupon_kinds,
    lock_coupon,
    offers_for_basket,
    release_coupons,
)
from zhongtai.orders.errors import NoStoreCanFulfil
from zhongtai.orders.kinds import PRICE_CHANNEL, FulfillmentType, LineKind, SalesChannel
from zhongtai.orders.loaded_inserts import insert_as_loaded
from zhongtai.orders.models import Quote
from zhongtai.orders.pricing_rules import BasketLine, DeliveryFeeRule, delivery_fee
from zhongtai.orders.settings import order_settings

MAX_LINES = 100


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
    reference_generation: int | None,
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
    # Sourcing lists the lines by location: a refusal names the line as the caller sent it.
    asked = {line.sku_id: i for i, line in enumerate(request.lines)}
    for location_id, line in located:
        priced = prices[line.sku_id]
        if not priced.for_sale:
            raise InvalidInput.field(
                f"lines[{asked[line.sku_id]}].sku_id", f"SKU {priced.sku.code} is not for sale"
            )
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
        reference_generation=reference_generation,
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
    idle = _coupons_giving_nothing(session, offers, fee_rule)
    summary = {
        "explanations": [_explained(e, idle.get(e.source)) for e in offers.explanations],
        "coupons": [
            {"coupon_id": e.source.removeprefix("coupon:"), "amount": e.amount}
            for e in offers.explanations
            if e.applied and e.source.startswith("coupon:") and e.source not in idle
        ],
        "free_delivery": offers.free_delivery,
    }
    return rows, priced_basket, currency, summary


def _explained(e: Explanation, idle: str | None) -> dict[str, Any]:
    return {
        "source": e.source,
        "name": e.name,
        "applied": e.applied and idle is None,
        "amount": e.amount,
        "why": e.sentence if idle is None else f"{e.name}: {idle}",
    }


def _coupons_giving_nothing(
    session: Session, offers: PricedOffers, fee_rule: DeliveryFeeRule | None
) -> dict[str, str]:
    """The coupons the offers engine applied that give this order nothing, with why.

    A coupon is held by the quote and used up when the order is paid: one that takes nothing
    off, waives no fee or adds no gift line must stay the member's. The checkout adds no gift
    lines (a gift needs stock sourced and held), and a free-delivery coupon gives nothing when
    no fee would be charged (pickup, or a basket already over the free-delivery threshold).
    """
    zero = {
        uuid.UUID(e.source.removeprefix("coupon:")): e.source
        for e in offers.explanations
        if e.applied and e.source.startswith("coupon:") and e.amount == 0
    }
    if not zero:
        return {}
    kinds = coupon_kinds(session, zero).items()
    goods = sum(line.net for line in offers.basket.lines)
    waives_a_fee = delivery_fee(goods, fee_rule) > 0
    idle = {}
    for coupon_id, kind in kinds:
        if kind is CouponKind.FREE_DELIVERY and waives_a_fee:
            continue
        idle[zero[coupon_id]] = _IDLE.get(kind, "takes nothing off this basket") + (
            "; the coupon stays the member's"
        )
    return idle


_IDLE = {
    CouponKind.FREE_DELIVERY: "there is no delivery fee to waive",
    CouponKind.GIFT_ITEM: "an online order cannot add its gift",
}


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

    Sourcing and pricing both ask for the basket's category lineages, and sourcing and
    holding both ask for the channel's allocation rules: each is read once per quote.
    """
    _check_request(request)
    now = now or utcnow()
    with remembering_sku_lineages(session), remembering_allocations(session):
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
            # A SKU that does not exist is the caller's mistake, not the stores' shortage:
            # 422 naming the line (read only on this path, never on a quote that goes through).
            require_skus(session, [x.sku_id for x in request.lines])
            raise NoStoreCanFulfil(plan.summary, sourcing=plan.explanation)
        located = [(location_id, x) for location_id, lines in plan.assignments for x in lines]
        rows, priced, currency, offers = _price_lines(
            session, caller, request, located, plan.store_id, now, plan.reference_generation
        )
        quote_id = new_id()
        hold = timedelta(seconds=order_settings().quote_ttl_seconds)
        for coupon in offers["coupons"]:
            lock_coupon(
                session,
                uuid.UUID(coupon["coupon_id"]),
                f"quote:{quote_id}",
                member_id=request.member_id,
                hold=hold,
                at=now,
            )
        reservation_ids = []
        # In location order, the first key of the order every use case locks stock in: the
        # holds of a split parcel, and every later step that walks them, keep to it.
        for location_id, lines in sorted(plan.assignments, key=lambda a: a[0]):
            held = reserve(
                session,
                f"quote:{quote_id}:{location_id}",
                location_id,
                lines,
                hold,
                channel=request.channel.value,
                now=now,
            )
            reservation_ids.append(str(held.reservation_id))
    written = utcnow()
    quote = Quote(
        id=quote_id,
        created_at=written,
        updated_at=written,
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
        expires_at=now + hold,
        order_id=None,
        actor=context.actor.get(),
    )
    insert_as_loaded(session, [quote])
    return quote


def get_quote(session: Session, quote_id: uuid.UUID) -> Quote:
    quote = session.get(Quote, quote_id)
    if quote is None:
        raise NotFound(f"No quote {quote_id}.", quote_id=str(quote_id))
    return quote


def release_quote(session: Session, quote: Quote, *, now: datetime | None = None) -> None:
    """Let go of an unplaced quote's stock and coupons at once (the customer left the checkout).

    The quote ends now, under the lock a placing claims it with: once let go it answers
    ``quote-expired``, never an order whose stock is no longer held. Letting go twice lets
    go of nothing more.
    """
    now = now or utcnow()
    locked = session.scalars(
        select(Quote).where(Quote.id == quote.id).with_for_update(),
        execution_options={"populate_existing": True},
    ).one()
    if locked.order_id is not None:
        raise Conflict(f"Quote {locked.id} became order {locked.order_id}; cancel the order.")
    if locked.expires_at > now:
        locked.expires_at = now
        locked.updated_at = now
        session.flush()
    for reservation_id in locked.reservation_ids:
        release_reservation(session, uuid.UUID(reservation_id))
    release_coupons(session, f"quote:{locked.id}", at=now)
