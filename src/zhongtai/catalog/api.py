"""HTTP endpoints of the catalog context: the one router the app mounts."""

from __future__ import annotations

from zhongtai.catalog import api_categories, api_prices, api_products
from zhongtai.core.http.routing import api_router

router = api_router()
router.include_router(api_categories.router)
router.include_router(api_products.router)
router.include_router(api_prices.router)
