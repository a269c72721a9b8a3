"""Checkout: quote a basket (source, price, promise, hold its stock); ``placing`` turns a quote
into an order."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.categories import remembering_sku_lineages
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
from zhongtai.loyalty.service import (
    lock_coupon,
    release_coupons,
)
from zhongtai.orders.errors import NoStoreCanFulfil
from zhongtai.orders.kinds import FulfillmentType, SalesChannel
from zhongtai.orders.loaded_inserts import insert_as_loaded
from zhongtai.orders.models import Quote
from zhongtai.orders.quote_pricing import price_quote
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


def _with_gifts(
    assignments: Sequence[tuple[uuid.UUID, Sequence[Line]]],
    gifts: Sequence[tuple[uuid.UUID, Line]],
) -> list[tuple[uuid.UUID, list[Line]]]:
    """Each location's lines to hold, the gifts added (a gift of a SKU the basket has too is
    held with it, one hold line per SKU), in location order."""
    holds = {
        location_id: {x.sku_id: x.quantity for x in lines} for location_id, lines in assignments
    }
    for location_id, gift in gifts:
        held = holds.setdefault(location_id, {})
        held[gift.sku_id] = held.get(gift.sku_id, 0) + gift.quantity
    return [
        (location_id, [Line(sku_id, q) for sku_id, q in held.items()])
        for location_id, held in sorted(holds.items(), key=lambda h: h[0])
    ]


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
        priced_quote = price_quote(
            session, caller, request, located, plan.store_id, now, plan.reference_generation
        )
        rows, priced, currency, offers = (
            priced_quote.rows,
            priced_quote.basket,
            priced_quote.currency,
            priced_quote.offers,
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
        for location_id, lines in _with_gifts(plan.assignments, priced_quote.gifts_held):
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
