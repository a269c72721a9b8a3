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


class TransferReceivedOtherwise(Conflict):
    """A receipt of a transfer already received, with other counts than the ones recorded.

    A resend of the recorded receipt answers it; other counts are another claim about the
    same goods (a recount, a second handheld), and the first counts stand.
    """

    slug = "transfer-received-otherwise"
    title = "This transfer was received with other counts"


class LocationClosed(Conflict):
    """A step that would move stock into a location closed since the step was agreed."""

    slug = "location-closed"
    title = "The location is closed"

    def __init__(self, detail: str, *, location_id: uuid.UUID, status: str, field: str) -> None:
        super().__init__(detail, location_id=str(location_id), location_status=status, field=field)
