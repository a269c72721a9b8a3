"""Errors of the inventory context with their own stable problem types."""

from __future__ import annotations

import uuid

from zhongtai.core.errors import Conflict


class InsufficientStock(Conflict):
    """Not enough available to promise (or on hand, for a shipment) for one SKU of a basket."""

    slug = "insufficient-stock"
    title = "Not enough stock"

    def __init__(
        self, *, location_id: uuid.UUID, sku_id: uuid.UUID, requested: int, available: int
    ) -> None:
        super().__init__(
            f"SKU {sku_id} at location {location_id}: {requested} requested, "
            f"{available} available.",
            location_id=str(location_id),
            sku_id=str(sku_id),
            requested=requested,
            available=available,
        )
