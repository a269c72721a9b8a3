"""Generates the demo catalog rows: categories, products, SKUs, EAN-13 barcodes and prices."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stdnum import ean

from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.auth.roles import Channel
from zhongtai.demo.assortment import (
    ADULT_SIZES,
    COLOURS,
    KIDS_SIZES,
    LEAVES,
    ORIGINS,
    ROOTS,
    Item,
    Leaf,
)
from zhongtai.demo.seeded import SeededIds, stream

Row = dict[str, Any]
CURRENCY = "CNY"
JIN_GRAMS = 500
PRICES_FROM = datetime(2025, 1, 1, tzinfo=UTC)
#: A few store promotions ran over Spring Festival 2025 and have ended: prices with a past window.
ENDED_PROMOTION = (datetime(2025, 1, 20, tzinfo=UTC), datetime(2025, 2, 10, tzinfo=UTC))


@dataclass
class CatalogRows:
    categories: list[Row] = field(default_factory=list)
    products: list[Row] = field(default_factory=list)
    skus: list[Row] = field(default_factory=list)
    barcodes: list[Row] = field(default_factory=list)
    price_overrides: list[Row] = field(default_factory=list)
    category_ids: dict[str, uuid.UUID] = field(default_factory=dict)


def shelf_price(rng: random.Random, fen: int, *, whole_yuan: bool = False) -> int:
    """A price as shelves show it: 12.98, 12.90 or 13.00; from 100 yuan (and for apparel)
    whole yuan ending in 9 (199, 459)."""
    if whole_yuan or fen >= 10_000:
        return max(9, round(fen / 1000) * 10 - 1) * 100
    return max(1, round(fen / 100)) * 100 - rng.choice((0, 2, 10, 20))


class BarcodeAllocator:
    """Hands out unique EAN-13s under Chinese GS1 company prefixes (690–699), one per owner."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next: dict[str, tuple[str, int]] = {}
        self._companies: set[str] = set()

    def _new_company(self) -> str:
        while True:
            company = f"{self._rng.randint(690, 699)}{self._rng.randint(0, 9999):04d}"
            if company not in self._companies:
                self._companies.add(company)
                return company

    def next(self, owner: str) -> str:
        company, item = self._next.get(owner) or (self._new_company(), self._rng.randint(100, 5000))
        if item > 99999:
            company, item = self._new_company(), 0
        self._next[owner] = (company, item + 1)
        body = f"{company}{item:05d}"
        return body + ean.calc_check_digit(body)


def _split(total: int, leaves: list[Leaf]) -> list[int]:
    """SKU counts per leaf in proportion to its share, adding up to exactly ``total``."""
    weight = sum(leaf.share for leaf in leaves)
    counts = [total * leaf.share // weight for leaf in leaves]
    by_share = sorted(range(len(leaves)), key=lambda i: -leaves[i].share)
    for i in by_share[: total - sum(counts)]:
        counts[i] += 1
    return counts


def build_categories(seed: int) -> CatalogRows:
    new_id = SeededIds(seed, "categories")
    rows = CatalogRows()
    for code, name in ROOTS:
        rows.category_ids[code] = new_id()
        rows.categories.append(
            {"id": rows.category_ids[code], "code": code, "name": name, "parent_id": None}
        )
    for root, leaves in LEAVES.items():
        for leaf in leaves:
            rows.category_ids[leaf.code] = new_id()
            rows.categories.append(
                {
                    "id": rows.category_ids[leaf.code],
                    "code": leaf.code,
                    "name": leaf.name,
                    "parent_id": rows.category_ids[root],
                }
            )
    return rows


class _Assortment:
    def __init__(self, seed: int, rows: CatalogRows) -> None:
        self.rng = stream(seed, "catalog")
        self.barcodes = BarcodeAllocator(stream(seed, "barcodes"))
        self.product_id = SeededIds(seed, "products")
        self.sku_id = SeededIds(seed, "skus", offset_ms=10_000_000)
        self.rows = rows

    def product(self, leaf: Leaf, item: Item) -> tuple[Row, str, str | None]:
        """A product row, the owner of its barcodes (brand, or the leaf's co-op), its origin."""
        rng = self.rng
        specs = item.specs or leaf.specs
        spec = rng.choice(specs) if specs else ""
        code = f"P{len(self.rows.products) + 1:06d}"
        fresh = leaf.kind is ProductKind.FRESH
        brand = None if fresh else rng.choice(leaf.brands)
        origin = rng.choice(ORIGINS) if fresh else None
        name = f"{item.name}{spec}" if fresh else f"{brand} {spec}{item.name}"
        shelf_life = rng.randint(*leaf.shelf_life) if leaf.shelf_life else None
        row = {
            "id": self.product_id(),
            "code": code,
            "name": name,
            "brand": brand,
            "category_id": self.rows.category_ids[leaf.code],
            "kind": leaf.kind,
            "unit": SaleUnit.GRAM if fresh else SaleUnit.PIECE,
            "shelf_life_days": shelf_life,
            "description": f"产地：{origin}。按重量计价，价格为每 500 克。" if origin else None,
            "is_active": True,
        }
        self.rows.products.append(row)
        return row, brand or f"coop:{leaf.code}", origin

    def sku(self, product: Row, owner: str, price: int, origin: str | None, **variant: Any) -> None:
        fresh = origin is not None
        size, colour, colour_code = (variant.get(k) for k in ("size", "colour", "colour_code"))
        code = f"{product['code']}-{colour_code}-{size}" if size else f"{product['code']}-01"
        sku_id = self.sku_id()
        self.rows.skus.append(
            {
                "id": sku_id,
                "code": code,
                "product_id": product["id"],
                "name": f"{product['name']} {colour} {size}" if size else product["name"],
                "size": size,
                "colour": colour,
                "attributes": {"origin": origin} if origin else {},
                "base_price": price,
                "currency": CURRENCY,
                "price_per": JIN_GRAMS if fresh else 1,
                "is_active": True,
            }
        )
        labels = 2 if not size and self.rng.random() < 0.05 else 1
        for _ in range(labels):
            barcode = self.barcodes.next(owner)
            self.rows.barcodes.append({"code": barcode, "sku_id": sku_id, "symbology": "ean13"})

    def fill(self, leaf: Leaf, count: int) -> None:
        rng = self.rng
        while count > 0:
            item = rng.choice(leaf.items)
            product, owner, origin = self.product(leaf, item)
            apparel = leaf.kind is ProductKind.APPAREL
            price = shelf_price(rng, rng.randint(item.low, item.high), whole_yuan=apparel)
            if not apparel:
                self.sku(product, owner, price, origin)
                count -= 1
                continue
            run: tuple[str, ...] = KIDS_SIZES if leaf.code.endswith("KIDS") else ADULT_SIZES
            first = rng.randint(0, 2)
            sizes = run[first : first + rng.randint(3, len(run) - first)]
            for colour, colour_code in rng.sample(COLOURS, rng.randint(2, 3)):
                for size in sizes:
                    if count > 0:
                        self.sku(
                            product,
                            owner,
                            price,
                            None,
                            size=size,
                            colour=colour,
                            colour_code=colour_code,
                        )
                        count -= 1


def build_assortment(seed: int, rows: CatalogRows, sku_count: int) -> None:
    """Adds exactly ``sku_count`` SKUs (with products and barcodes) to ``rows``."""
    assortment = _Assortment(seed, rows)
    leaves = [leaf for group in LEAVES.values() for leaf in group]
    for leaf, count in zip(leaves, _split(sku_count, leaves), strict=True):
        assortment.fill(leaf, count)


def build_price_overrides(seed: int, rows: CatalogRows, store_ids: list[uuid.UUID]) -> None:
    """Online-only prices for some SKUs, and local prices in a few stores (one promotion ended)."""
    rng = stream(seed, "prices")
    new_id = SeededIds(seed, "price-overrides", offset_ms=20_000_000)

    def override(sku: Row, price: int, **scope: Any) -> None:
        rows.price_overrides.append(
            {
                "id": new_id(),
                "sku_id": sku["id"],
                "channel": scope.get("channel"),
                "store_id": scope.get("store_id"),
                "price": price,
                "currency": CURRENCY,
                "valid_from": scope.get("valid_from", PRICES_FROM),
                "valid_to": scope.get("valid_to"),
                "reason": scope["reason"],
            }
        )

    for sku in rows.skus:
        if rng.random() < 0.05:
            online = shelf_price(rng, sku["base_price"] * 95 // 100)
            override(sku, online, channel=Channel.APP.value, reason="App 专享价")
            if rng.random() < 0.5:
                override(sku, online, channel=Channel.MINI_PROGRAM.value, reason="小程序专享价")
    for store_id in store_ids[:3]:
        for sku in rows.skus:
            roll = rng.random()
            if roll < 0.02:
                local = shelf_price(rng, sku["base_price"] * rng.randint(90, 108) // 100)
                override(sku, local, store_id=store_id, reason="商圈调价")
            elif roll < 0.025:
                promo = shelf_price(rng, sku["base_price"] * 80 // 100)
                valid_from, valid_to = ENDED_PROMOTION
                override(
                    sku,
                    promo,
                    store_id=store_id,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    reason="春节促销（已结束）",
                )


def sku_lineages(catalog: CatalogRows) -> dict[uuid.UUID, tuple[uuid.UUID, ...]]:
    """Each SKU's category and its ancestors, nearest first: what coupon scopes and commission
    rules match a line on, so the demo's coupons and commission read it as the services do."""
    parents = {c["id"]: c["parent_id"] for c in catalog.categories}
    products = {p["id"]: p["category_id"] for p in catalog.products}
    lineages: dict[uuid.UUID, tuple[uuid.UUID, ...]] = {}
    for sku in catalog.skus:
        lineage, at = [], products[sku["product_id"]]
        while at is not None:
            lineage.append(at)
            at = parents[at]
        lineages[sku["id"]] = tuple(lineage)
    return lineages
