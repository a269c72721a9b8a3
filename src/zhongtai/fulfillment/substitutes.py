"""The substitutes a picker offers: alike enough to the ordered SKU (same category, same sale
unit), and priced by the catalog at the order's store and channel, never at a price typed at
the packing table (a slip of 0 fen would refund the whole line while the customer kept the
goods)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.lookup import sku_prices
from zhongtai.catalog.models import Product, Sku
from zhongtai.core.auth.principal import Principal
from zhongtai.fulfillment.picking import SkuFacts, Substitute, SubstituteAsked
from zhongtai.orders.kinds import PRICE_CHANNEL
from zhongtai.orders.models import Order

#: Whose prices a pack reads: the chain's, for the order's own store and channel.
_PACKING_TABLE = Principal(
    kind="staff",
    id=uuid.UUID(int=0),
    name="packing",
    permissions=frozenset(),
    store_ids=None,
)


def sku_facts(session: Session, sku_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, SkuFacts]:
    """Category and sale unit of each of these SKUs that exists, in one read."""
    rows = session.execute(
        select(Sku.id, Product.category_id, Product.unit)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.id.in_(set(sku_ids)))
    )
    return {sku_id: SkuFacts(category_id, unit.value) for sku_id, category_id, unit in rows}


def substitute_prices(
    session: Session, order: Order, sku_ids: Collection[uuid.UUID], at: datetime
) -> dict[uuid.UUID, tuple[int, int]]:
    """(fen, per how many units) of each of these existing SKUs, as the order's store sells
    them on the order's channel at ``at``; one statement for all."""
    if not sku_ids:
        return {}
    priced = sku_prices(
        session,
        sorted(sku_ids),
        caller=_PACKING_TABLE,
        store_id=order.store_id,
        channel=PRICE_CHANNEL[order.channel],
        at=at,
    )
    return {sku_id: (p.price.amount, p.sku.price_per) for sku_id, p in priced.items()}


def priced(asked: SubstituteAsked, prices: dict[uuid.UUID, tuple[int, int]]) -> Substitute:
    price, per = prices[asked.sku_id]
    return Substitute(asked.sku_id, asked.quantity, price, per)
