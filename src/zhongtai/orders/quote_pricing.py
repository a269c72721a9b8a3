"""The price of a checkout quote: each line at the store that sells it, the live promotions
and the member's coupons spread over the lines, the gifts the coupons give, and which coupons
give the order nothing (those stay the member's)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from zhongtai.catalog.lookup import sku_prices
from zhongtai.core.auth.principal import Principal
from zhongtai.core.errors import InvalidInput
from zhongtai.inventory.rules import Line
from zhongtai.loyalty.coupon_rules import CouponKind
from zhongtai.loyalty.offer_pricing import Gift
from zhongtai.loyalty.promotion_rules import Explanation
from zhongtai.loyalty.service import (
    coupon_kinds,
    offers_for_basket,
)
from zhongtai.orders.gifts import NO_GIFTS, GiftsAdded, gifts_for_order
from zhongtai.orders.kinds import PRICE_CHANNEL, FulfillmentType, LineKind
from zhongtai.orders.pricing_rules import (
    BasketLine,
    DeliveryFeeRule,
    PricedBasket,
    delivery_fee,
    price_with_gifts,
)
from zhongtai.orders.settings import order_settings

if TYPE_CHECKING:
    from zhongtai.orders.checkout import QuoteRequest


@dataclass(frozen=True)
class PricedQuote:
    rows: list[dict[str, Any]]
    basket: PricedBasket
    currency: str
    offers: dict[str, Any]
    #: Where each gift line is held, with the basket's holds.
    gifts_held: tuple[tuple[uuid.UUID, Line], ...] = ()


def price_quote(
    session: Session,
    caller: Principal,
    request: QuoteRequest,
    located: Sequence[tuple[uuid.UUID, Line]],
    store_id: uuid.UUID,
    now: datetime,
    reference_generation: int | None,
) -> PricedQuote:
    """Price every goods line at the store that sells it, plus the service lines (free), then
    apply the live promotions and the member's coupons (loyalty's offers engine), spread over
    the lines so returns, points and commission see each line's net. The gifts the coupons
    give come last, free, from the store's shelf (``orders.gifts``)."""
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
    added = NO_GIFTS
    if offers.gifts:
        added = gifts_for_order(
            session,
            offers.gifts,
            caller=_pricing_caller(caller),
            channel=request.channel,
            store_id=store_id,
            located=located,
            now=now,
        )
    priced_basket = offers.basket
    explanations = list(offers.explanations)
    if added.lines:
        priced_basket = price_with_gifts(
            basket,
            added.lines,
            delivery_fee_rule=None if offers.free_delivery else fee_rule,
            discounts=offers.discounts,
        )
        rows.extend(added.rows)
        # A gift coupon gave what its gift is worth: the amount it is redeemed for.
        given = {d.source: d.applied for d in priced_basket.discounts[-len(added.lines) :]}
        explanations = [
            replace(e, amount=given[e.source]) if e.source in given else e for e in explanations
        ]
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
    goods = sum(line.net for line in priced_basket.lines)
    idle = _coupons_giving_nothing(session, explanations, goods, fee_rule, added.refused)
    summary = {
        "explanations": [_explained(e, idle.get(e.source)) for e in explanations],
        "coupons": [
            {"coupon_id": e.source.removeprefix("coupon:"), "amount": e.amount}
            for e in explanations
            if e.applied and e.source.startswith("coupon:") and e.source not in idle
        ],
        "free_delivery": offers.free_delivery,
    }
    if added.lines:
        summary["gifts"] = _gifts_given(offers.gifts, added, len(basket), priced_basket, idle)
    return PricedQuote(rows, priced_basket, currency, summary, added.held)


def _gifts_given(
    gifts: Sequence[Gift],
    added: GiftsAdded,
    first: int,
    priced: PricedBasket,
    idle: Mapping[str, str],
) -> list[dict[str, Any]]:
    """What earned each gift given, kept with the order (its ``offers``) for its returns: the
    gift's line (index into the lines), what it was worth, the coupon's threshold and what
    each line counted toward it (``orders.gift_returns``)."""
    terms = {g.source: g for g in gifts}
    given = []
    for j, gift_line in enumerate(added.lines):
        gift = terms[gift_line.source]
        if gift_line.source in idle:
            continue
        given.append(
            {
                "source": gift.source,
                "coupon_id": gift.source.removeprefix("coupon:"),
                "line": first + j,
                "sku_id": str(gift.sku_id),
                "quantity": gift.quantity,
                "worth": priced.lines[first + j].amount,
                "threshold_fen": gift.threshold_fen,
                "counted": [[i, fen] for i, fen in gift.counted],
            }
        )
    return given


def _explained(e: Explanation, idle: str | None) -> dict[str, Any]:
    return {
        "source": e.source,
        "name": e.name,
        "applied": e.applied and idle is None,
        "amount": e.amount,
        "why": e.sentence if idle is None else f"{e.name}: {idle}",
    }


def _coupons_giving_nothing(
    session: Session,
    explanations: Sequence[Explanation],
    goods: int,
    fee_rule: DeliveryFeeRule | None,
    gifts_refused: Mapping[str, str],
) -> dict[str, str]:
    """The coupons the offers engine applied that give this order nothing, with why.

    A coupon is held by the quote and used up when the order is paid: one that takes nothing
    off, waives no fee or adds no gift line must stay the member's. A gift coupon gives
    nothing when its gift cannot come with the order (``gifts_refused`` says why), and a
    free-delivery coupon when no fee would be charged on ``goods`` (pickup, or a basket
    already over the free-delivery threshold).
    """
    zero = {
        uuid.UUID(e.source.removeprefix("coupon:")): e.source
        for e in explanations
        if e.applied and e.source.startswith("coupon:") and e.amount == 0
    }
    if not zero:
        return {}
    kinds = coupon_kinds(session, zero).items()
    waives_a_fee = delivery_fee(goods, fee_rule) > 0
    idle = {}
    for coupon_id, kind in kinds:
        if kind is CouponKind.FREE_DELIVERY and waives_a_fee:
            continue
        source = zero[coupon_id]
        why = gifts_refused.get(source) or _IDLE.get(kind, "takes nothing off this basket")
        idle[source] = f"{why}; the coupon stays the member's"
    return idle


_IDLE = {
    CouponKind.FREE_DELIVERY: "there is no delivery fee to waive",
    CouponKind.GIFT_ITEM: "its gift cannot come with this order",
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
