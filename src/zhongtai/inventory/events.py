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


@event_type("allocation.changed")
class AllocationChanged(BaseModel):
    """What a sales channel may sell at a location changed: its allocation rule there (or its
    chain-wide rule, ``location_id`` null, which governs every store without a rule of its own)
    was set, changed or removed.

    ``share_percent`` and ``keep_units`` are the rule now; both null when it was removed (the
    channel's chain-wide rule, or else the whole ATP, governs again). Setting a rule to what it
    already was announces nothing.
    """

    allocation_id: uuid.UUID
    channel: str
    location_id: uuid.UUID | None
    share_percent: int | None
    keep_units: int | None
