"""Request and response bodies of the inventory endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.inventory.ledger import Figures, Posted
from zhongtai.inventory.models import (
    MovementKind,
    ReservationStatus,
    StocktakeStatus,
    TransferStatus,
)
from zhongtai.inventory.queries import BalanceView
from zhongtai.inventory.rules import (
    CHANNEL_PATTERN,
    MAX_BASKET_LINES,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    Line,
)

Quantity = Field(gt=0, le=10_000_000, description="Units (grams for weighed goods).")
Reference = Field(min_length=1, max_length=128)


class LineIn(BaseModel):
    sku_id: uuid.UUID
    quantity: int = Quantity

    def line(self) -> Line:
        return Line(self.sku_id, self.quantity)


class ReceiptLineIn(LineIn):
    lot: str | None = Field(default=None, max_length=64)
    expires_on: date | None = Field(default=None, description="Required for fresh goods.")


class ReceiptIn(BaseModel):
    location_id: uuid.UUID
    lines: list[ReceiptLineIn] = Field(min_length=1, max_length=MAX_BASKET_LINES)
    reference_type: str | None = Field(
        default=None, max_length=32, examples=["purchase_order", "dc_delivery"]
    )
    reference_id: str | None = Field(default=None, max_length=128)


class AdjustmentIn(BaseModel):
    location_id: uuid.UUID
    sku_id: uuid.UUID
    quantity: int = Field(
        ge=-10_000_000, le=10_000_000, description="Signed, not 0; negative for a write-off."
    )
    kind: Literal[MovementKind.ADJUSTMENT, MovementKind.WRITE_OFF] = MovementKind.ADJUSTMENT
    reason: str = Field(min_length=1, max_length=200, examples=["damaged in transit"])


class StockLevelsIn(BaseModel):
    safety_stock: int = Field(ge=0, le=10_000_000)
    low_stock_level: int = Field(default=0, ge=0, le=10_000_000)


class BasketIn(BaseModel):
    location_id: uuid.UUID
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_BASKET_LINES)


class ReservationIn(BasketIn):
    reference: str = Field(
        min_length=1, max_length=128, description="Checkout or order id; a retry answers the same."
    )
    ttl_seconds: int = Field(default=900, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)
    channel: str | None = Field(
        default=None,
        pattern=CHANNEL_PATTERN,
        description="Staff only (a key reserves for its own channel): whose allocation applies.",
    )


class SaleIn(BasketIn):
    reference: str = Field(min_length=1, max_length=128, description="The till receipt number.")


class BalanceOut(BaseModel):
    location_id: uuid.UUID
    sku_id: uuid.UUID
    on_hand: int
    reserved: int
    safety_stock: int
    in_transit: int
    low_stock_level: int
    atp: int = Field(description="Available to promise: on_hand - reserved - safety_stock, >= 0.")

    @classmethod
    def of(cls, view: BalanceView) -> BalanceOut:
        return cls(**view.__dict__)


class FiguresOut(BaseModel):
    location_id: uuid.UUID
    sku_id: uuid.UUID
    on_hand: int
    reserved: int
    safety_stock: int
    atp: int

    @classmethod
    def of(cls, figures: Figures) -> FiguresOut:
        return cls(
            location_id=figures.location_id,
            sku_id=figures.sku_id,
            on_hand=figures.on_hand,
            reserved=figures.reserved,
            safety_stock=figures.safety_stock,
            atp=figures.atp,
        )


class MovementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    location_id: uuid.UUID
    sku_id: uuid.UUID
    kind: MovementKind
    quantity: int
    on_hand_after: int
    reference_type: str | None
    reference_id: str | None
    lot: str | None
    expires_on: date | None
    reason: str | None
    approver: str | None
    actor: str | None
    occurred_at: datetime


class PostedOut(BaseModel):
    movement_id: uuid.UUID
    kind: MovementKind
    quantity: int
    balance: FiguresOut
    discrepancy_id: uuid.UUID | None = Field(
        description="Set when this sale took on-hand below zero and was flagged."
    )

    @classmethod
    def of(cls, posted: Posted) -> PostedOut:
        return cls(
            movement_id=posted.movement_id,
            kind=posted.kind,
            quantity=posted.quantity,
            balance=FiguresOut.of(posted.figures),
            discrepancy_id=posted.discrepancy_id,
        )


class PostedList(BaseModel):
    movements: list[PostedOut]


class ReservationLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku_id: uuid.UUID
    quantity: int


class ReservationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    reference: str
    location_id: uuid.UUID
    status: ReservationStatus
    expires_at: datetime
    created_at: datetime
    lines: list[ReservationLineOut]


class DiscrepancyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    location_id: uuid.UUID
    sku_id: uuid.UUID
    movement_id: uuid.UUID
    on_hand_after: int
    detected_at: datetime
    resolved_at: datetime | None


class AllocationIn(BaseModel):
    channel: str = Field(
        pattern=CHANNEL_PATTERN, examples=["app", "mini_program", "marketplace:eleme"]
    )
    location_id: uuid.UUID | None = Field(
        default=None, description="null: the channel's rule for every store without its own."
    )
    share_percent: int = Field(default=100, ge=0, le=100)
    keep_units: int = Field(default=0, ge=0, le=10_000_000)


class AllocationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: str
    location_id: uuid.UUID | None
    share_percent: int
    keep_units: int


class ChannelAtpOut(BaseModel):
    sku_id: uuid.UUID
    atp: int = Field(description="The store's ATP.")
    channel_atp: int = Field(description="What this channel may still sell of it.")


class StoreOfferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    location_id: uuid.UUID
    code: str
    name: str
    distance_m: int
    delivers: bool
    pickup: bool


class TransferIn(BaseModel):
    from_location_id: uuid.UUID
    to_location_id: uuid.UUID
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_BASKET_LINES)
    note: str | None = Field(default=None, max_length=200)


class ReceivedLineIn(BaseModel):
    sku_id: uuid.UUID
    quantity: int = Field(ge=0, le=10_000_000, description="Counted on arrival.")


class TransferReceiptIn(BaseModel):
    lines: list[ReceivedLineIn] = Field(
        default_factory=list,
        description="Counts that differ from what was shipped; others: as shipped.",
    )


class TransferLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku_id: uuid.UUID
    quantity: int
    received_quantity: int | None


class TransferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    from_location_id: uuid.UUID
    to_location_id: uuid.UUID
    status: TransferStatus
    note: str | None
    requested_by: str | None
    approved_by: str | None
    shipped_at: datetime | None
    received_at: datetime | None
    lines: list[TransferLineOut]


class StocktakeIn(BaseModel):
    location_id: uuid.UUID
    note: str | None = Field(default=None, max_length=200)


class CountSheetIn(BaseModel):
    lines: list[ReceivedLineIn] = Field(min_length=1, max_length=1000)


class StocktakeCountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    zone: str
    sku_id: uuid.UUID
    counted: int
    on_hand_at_count: int
    counted_by: str | None
    counted_at: datetime


class StocktakeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    location_id: uuid.UUID
    status: StocktakeStatus
    note: str | None
    approved_by: str | None
    approved_at: datetime | None
    counts: list[StocktakeCountOut]
