"""The events of the inventory context: what others (channels, apps, analytics) may react to."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from zhongtai.core.outbox import event_type


class _StockFigures(BaseModel):
    location_id: uuid.UUID
    sku_id: uuid.UUID
    on_hand: int
    reserved: int
    safety_stock: int
    atp: int


@event_type("stock.changed")
class StockChanged(_StockFigures):
    """The stock of a SKU at a location changed (a movement or a reservation step).

    ``cause`` is the movement kind, or ``reserved`` / ``released`` / ``expired`` / ``settings``;
    ``quantity`` the signed change of on-hand (movements) or of reserved (reservations).
    """

    cause: str
    quantity: int


@event_type("stock.low")
class StockLow(_StockFigures):
    """ATP of a SKU at a location fell to its low-stock level or below (still above zero)."""

    low_stock_level: int


@event_type("stock.out")
class StockOut(_StockFigures):
    """ATP of a SKU at a location reached zero: channels should stop offering it there."""


@event_type("stock.discrepancy_detected")
class StockDiscrepancyDetected(BaseModel):
    """A sale took on-hand below zero: the recorded stock was wrong; the store should count."""

    discrepancy_id: uuid.UUID
    location_id: uuid.UUID
    sku_id: uuid.UUID
    on_hand: int
    movement_id: uuid.UUID
