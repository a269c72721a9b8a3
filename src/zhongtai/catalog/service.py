"""Use cases of the catalog, the context's public face: one import for the other contexts.

Each use case lives in the module of its subject (categories, products, skus, prices, lookup);
this module re-exports them so that callers need not know the split.
"""

from __future__ import annotations

from zhongtai.catalog.categories import (
    MAX_CATEGORY_DEPTH,
    category_lineage,
    category_tree,
    create_category,
    get_category,
    update_category,
)
from zhongtai.catalog.lookup import (
    BarcodeHit,
    PriceAudience,
    PricedSku,
    lookup_barcode,
    price_audience,
    sku_price,
)
from zhongtai.catalog.prices import add_price_override, end_price_override, list_price_overrides
from zhongtai.catalog.products import create_product, get_product, list_products, update_product
from zhongtai.catalog.skus import (
    NewSku,
    add_barcode,
    add_sku,
    get_sku,
    remove_barcode,
    update_sku,
)

__all__ = [
    "MAX_CATEGORY_DEPTH",
    "BarcodeHit",
    "NewSku",
    "PriceAudience",
    "PricedSku",
    "add_barcode",
    "add_price_override",
    "add_sku",
    "category_lineage",
    "category_tree",
    "create_category",
    "create_product",
    "end_price_override",
    "get_category",
    "get_product",
    "get_sku",
    "list_price_overrides",
    "list_products",
    "lookup_barcode",
    "price_audience",
    "remove_barcode",
    "sku_price",
    "update_category",
    "update_product",
    "update_sku",
]
