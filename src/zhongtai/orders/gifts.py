"""Gifts a member's coupon adds to an online order (满额赠): a gift comes from the store that
fulfils the order, only when that store's shelf has it for the order's channel, as a free
goods line held with the rest of the basket.

A gift line is a goods line like any other (picked, packed, handed over, returnable onto the
shelf), priced at the catalog's price with all of it taken off by the coupon: the order's
books show what the gift was worth, and its net, the base of points, commission and
refunds, is 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from zhongtai.catalog.lookup import sku_prices
from zhongtai.core.auth.principal import Principal
from zhongtai.inventory.allocation import channel_atp_at
from zhongtai.inventory.rules import Line
from zhongtai.loyalty.offer_pricing import Gift
from zhongtai.orders.kinds import PRICE_CHANNEL, SalesChannel
from zhongtai.orders.pricing_rules import BasketLine, GiftLine


@dataclass(frozen=True)
class GiftsAdded:
    #: The gifts given, in the coupons' order: what pricing appends to the basket.
    lines: tuple[GiftLine, ...] = ()
    #: Their quote rows (where each is held), in the same order.
    rows: tuple[dict[str, Any], ...] = ()
    #: What to hold for them, and where.
    held: tuple[tuple[uuid.UUID, Line], ...] = ()
    #: Coupon source -> why its gift is not given (the coupon then stays the member's).
    refused: dict[str, str] = field(default_factory=dict)


NO_GIFTS = GiftsAdded()


def gifts_for_order(
    session: Session,
    gifts: Sequence[Gift],
    *,
    caller: Principal,
    channel: SalesChannel,
    store_id: uuid.UUID,
    located: Sequence[tuple[uuid.UUID, Line]],
    now: datetime,
) -> GiftsAdded:
    """The gifts the store can give with this basket, each at the store's price for the
    channel, within what the channel may sell there after the basket's own units.

    Two statements (the gifts' prices, their stock at the store), read only when a coupon
    gives a gift. A gift no longer offered, or not on the shelf, is refused with why.
    """
    skus = list(dict.fromkeys(g.sku_id for g in gifts))
    prices = sku_prices(
        session, skus, caller=caller, store_id=store_id, channel=PRICE_CHANNEL[channel], at=now
    )
    free = channel_atp_at(session, channel.value, [store_id], skus)
    left = {sku: free.get((store_id, sku), 0) for sku in skus}
    for location_id, line in located:
        if location_id == store_id and line.sku_id in left:
            left[line.sku_id] -= line.quantity
    lines: list[GiftLine] = []
    rows: list[dict[str, Any]] = []
    held: list[tuple[uuid.UUID, Line]] = []
    refused: dict[str, str] = {}
    for gift in gifts:
        priced = prices[gift.sku_id]
        if not priced.for_sale:
            refused[gift.source] = f"its gift {priced.sku.code} is no longer offered"
            continue
        if left[gift.sku_id] < gift.quantity:
            refused[gift.source] = f"its gift {priced.sku.code} is out of stock at this store"
            continue
        left[gift.sku_id] -= gift.quantity
        lines.append(
            GiftLine(
                BasketLine(gift.sku_id, priced.price.amount, priced.sku.price_per, gift.quantity),
                gift.source,
            )
        )
        rows.append({"sku_id": str(gift.sku_id), "location_id": str(store_id), "service": None})
        held.append((store_id, Line(gift.sku_id, gift.quantity)))
    return GiftsAdded(tuple(lines), tuple(rows), tuple(held), refused)
