"""What each demo store trades in: its range, what it may deliver, the online fulfilment types
its capabilities and pilot rules allow, its members and its guide."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zhongtai.catalog.models import ProductKind
from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.sites import StoreFormat
from zhongtai.orders.kinds import FulfillmentType
from zhongtai.stores.models import Capability
from zhongtai.stores.rules import PilotSwitch, pilot_decision

#: The capability (and pilot feature) each online fulfilment type needs, as sourcing reads it.
NEEDS: dict[FulfillmentType, Capability] = {
    FulfillmentType.DELIVERY: Capability.DELIVERY,
    FulfillmentType.PICKUP: Capability.PICKUP,
    FulfillmentType.SHIP: Capability.SHIP_FROM_STORE,
    FulfillmentType.RESERVE_TRY: Capability.PICKUP,
}


@dataclass(frozen=True)
class StoreTrade:
    store: Row
    format: StoreFormat
    online_types: tuple[FulfillmentType, ...]
    delivery_radius_m: int | None
    range: tuple[Row, ...]  # SKUs the store carries
    deliverable: tuple[Row, ...]  # of those, what its delivery pilot lets riders take
    apparel: tuple[Row, ...]  # of those, what a customer may reserve to try on
    members: tuple[uuid.UUID, ...]
    guide_id: uuid.UUID | None


def _lineages(chain: DemoChain) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Each product's category lineage, [leaf, ..., root], as pilot rules read it."""
    parents = {c["id"]: c["parent_id"] for c in chain.catalog.categories}
    lineages: dict[uuid.UUID, list[uuid.UUID]] = {}
    for product in chain.catalog.products:
        lineage, at = [], product["category_id"]
        while at is not None:
            lineage.append(at)
            at = parents[at]
        lineages[product["id"]] = lineage
    return lineages


def store_trades(
    chain: DemoChain,
    ranges: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    members: Mapping[str, Sequence[uuid.UUID]],
    guides: Mapping[str, uuid.UUID],
) -> list[StoreTrade]:
    """Every store's trade, from the chain's capabilities and pilot rules and the stock ranges."""
    switches = [
        PilotSwitch(r["feature"], r["scope"], r["scope_value"], r["enabled"])
        for r in chain.pilot_rules
    ]
    skus = {s["id"]: s for s in chain.catalog.skus}
    products = {p["id"]: p for p in chain.catalog.products}
    lineages = _lineages(chain)
    trades = []
    for store in chain.stores:
        caps = {c["capability"]: c for c in chain.capabilities if c["location_id"] == store["id"]}

        def allowed(
            feature: Capability, lineage: Sequence[uuid.UUID] = (), *, _store: Row = store
        ) -> bool:
            return pilot_decision(
                switches,
                feature=feature.value,
                store_id=_store["id"],
                region=_store["region"],
                category_lineage=lineage,
            ).enabled

        carried = tuple(skus[i] for i in ranges.get(store["id"], ()) if i in skus)
        apparel = tuple(
            s for s in carried if products[s["product_id"]]["kind"] is ProductKind.APPAREL
        )
        types = [t for t, cap in NEEDS.items() if cap in caps and allowed(cap)]
        if not apparel and FulfillmentType.RESERVE_TRY in types:
            types.remove(FulfillmentType.RESERVE_TRY)
        deliverable: tuple[Row, ...] = ()
        if FulfillmentType.DELIVERY in types:
            deliverable = tuple(
                s for s in carried if allowed(Capability.DELIVERY, lineages[s["product_id"]])
            )
        delivery = caps.get(Capability.DELIVERY)
        trades.append(
            StoreTrade(
                store=store,
                format=chain.formats.get(store["code"], StoreFormat.SUPERMARKET),
                online_types=tuple(types),
                delivery_radius_m=delivery["delivery_radius_m"] if delivery else None,
                range=carried,
                deliverable=deliverable,
                apparel=apparel,
                members=tuple(members.get(store["code"], ())),
                guide_id=guides.get(store["code"]),
            )
        )
    return trades
