"""Opening stock of the demo chain: balances with their receipts, fresh goods in dated lots."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.clock import utcnow
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.seeded import SeededIds, stream
from zhongtai.inventory.models import MovementKind, StockBalance, StockMovement
from zhongtai.stores.models import LocationKind

#: SKUs stocked per location at most: keeps `seed-demo --skus 100000` fast.
MAX_STOCKED_PER_LOCATION = 2000
CHUNK = 5000
Row = dict[str, Any]


def build_demo_stock(chain: DemoChain) -> tuple[list[Row], list[Row]]:
    """(balances, receipt movements): stores carry most of the range, some of it low or out;
    the DC and warehouse hold cases. Weighed goods count grams."""
    products = {p["id"]: p for p in chain.catalog.products}
    skus = chain.catalog.skus[:MAX_STOCKED_PER_LOCATION]
    ids = SeededIds(chain.seed, "stock-movements")
    now = utcnow()
    balances: list[Row] = []
    movements: list[Row] = []
    for location in chain.locations:
        rng = stream(chain.seed, f"stock:{location['code']}")
        is_store = location["kind"] is LocationKind.STORE
        for sku in skus:
            if is_store and rng.random() < 0.3:
                continue  # not in this store's range
            product = products[sku["product_id"]]
            grams = product["unit"] is SaleUnit.GRAM
            if is_store:
                on_hand = 0 if rng.random() < 0.05 else rng.randint(1, 60)
            else:
                on_hand = rng.randint(200, 2000)
            if grams:
                on_hand *= 500  # jin (500 g) to grams
            balances.append(
                {
                    "location_id": location["id"],
                    "sku_id": sku["id"],
                    "on_hand": on_hand,
                    "reserved": 0,
                    "safety_stock": (rng.randint(0, 3) * (500 if grams else 1)) if is_store else 0,
                    "in_transit": 0,
                    "low_stock_level": (5 * (500 if grams else 1)) if is_store else 0,
                    "updated_at": now,
                }
            )
            if on_hand == 0:
                continue
            fresh = product["kind"] is ProductKind.FRESH
            shelf_life = product["shelf_life_days"] or 1
            movements.append(
                {
                    "id": ids(),
                    "location_id": location["id"],
                    "sku_id": sku["id"],
                    "kind": MovementKind.RECEIPT,
                    "quantity": on_hand,
                    "on_hand_after": on_hand,
                    "reference_type": "demo_opening_stock",
                    "reference_id": f"OPEN-{location['code']}",
                    "lot": f"L{now:%m%d}-{rng.randint(1, 9)}" if fresh else None,
                    "expires_on": (now + timedelta(days=rng.randint(1, shelf_life))).date()
                    if fresh
                    else None,
                    "reason": None,
                    "approver": None,
                    "actor": "system:demo",
                    "occurred_at": now,
                }
            )
    return balances, movements


def load_demo_stock(
    session: Session, chain: DemoChain, report: Callable[[str, int, int], None]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Bulk-inserts the opening stock; each balance equals its receipt (the ledger verifies).
    Answers each location's range: the SKUs it carries."""
    balances, movements = build_demo_stock(chain)
    for model, rows, step in (
        (StockBalance, balances, "stock balances"),
        (StockMovement, movements, "stock receipts"),
    ):
        report(step, 0, len(rows))
        for start in range(0, len(rows), CHUNK):
            session.execute(insert(model), rows[start : start + CHUNK])
            report(step, min(start + CHUNK, len(rows)), len(rows))
    ranges: dict[uuid.UUID, list[uuid.UUID]] = {}
    for balance in balances:
        ranges.setdefault(balance["location_id"], []).append(balance["sku_id"])
    return ranges
