"""Tables of stock: balances per (location, SKU), the ledger, reservations, discrepancies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum


class MovementKind(StrEnum):
    """Why on-hand stock changed. The sign of a movement's quantity says which way."""

    RECEIPT = "receipt"
    SALE = "sale"
    SHIPMENT = "shipment"
    RETURN = "return"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    STOCKTAKE_VARIANCE = "stocktake_variance"
    WRITE_OFF = "write_off"
    ADJUSTMENT = "adjustment"


class ReservationStatus(StrEnum):
    ACTIVE = "active"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    EXPIRED = "expired"


class StockBalance(Base):
    """The stock of one SKU at one location; ATP = on_hand - reserved - safety_stock (>= 0).

    ``on_hand`` equals the sum of the location's movements of the SKU. It may go negative only
    through POS sales (the goods are in the customer's hand; the count was wrong), which are
    then flagged as discrepancies. Every change is one conditional UPDATE (or an upsert).
    """

    __tablename__ = "stock_balances"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("safety_stock >= 0", name="safety_stock_not_negative"),
        CheckConstraint("in_transit >= 0", name="in_transit_not_negative"),
        CheckConstraint("low_stock_level >= 0", name="low_stock_level_not_negative"),
        Index("ix_stock_balances_sku_id", "sku_id"),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    safety_stock: Mapped[int] = mapped_column(default=0)
    in_transit: Mapped[int] = mapped_column(default=0, doc="Inbound, shipped but not received.")
    low_stock_level: Mapped[int] = mapped_column(
        default=0, doc="ATP at or below this (and above 0) is announced as stock.low."
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StockMovement(IdMixin, Base):
    """One append-only line of the ledger: a signed change of one SKU's on-hand at a location."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
        Index("ix_stock_movements_location_sku", "location_id", "sku_id", "id"),
        Index("ix_stock_movements_reference", "reference_type", "reference_id"),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"))
    kind: Mapped[MovementKind] = mapped_column(str_enum(MovementKind, length=24))
    quantity: Mapped[int] = mapped_column(doc="Signed: + into stock, - out of stock.")
    on_hand_after: Mapped[int]
    reference_type: Mapped[str | None] = mapped_column(String(32))
    reference_id: Mapped[str | None] = mapped_column(String(128))
    lot: Mapped[str | None] = mapped_column(String(64))
    expires_on: Mapped[date | None]
    reason: Mapped[str | None] = mapped_column(String(200))
    approver: Mapped[str | None] = mapped_column(String(80))
    actor: Mapped[str | None] = mapped_column(String(80))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reservation(IdMixin, TimestampMixin, Base):
    """Stock held for a checkout or an order until it is confirmed, released or expires."""

    __tablename__ = "stock_reservations"
    __table_args__ = (Index("ix_stock_reservations_status_expires", "status", "expires_at"),)

    reference: Mapped[str] = mapped_column(String(128), unique=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), index=True)
    status: Mapped[ReservationStatus] = mapped_column(
        str_enum(ReservationStatus, length=16), default=ReservationStatus.ACTIVE
    )
    expires_at: Mapped[datetime]
    channel: Mapped[str | None] = mapped_column(
        String(48), doc="The sales channel whose allocation limited the hold."
    )
    actor: Mapped[str | None] = mapped_column(String(80))

    lines: Mapped[list[ReservationLine]] = relationship(
        lazy="selectin", order_by="ReservationLine.sku_id", cascade="all, delete-orphan"
    )


class ReservationLine(Base):
    __tablename__ = "stock_reservation_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    reservation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stock_reservations.id", ondelete="CASCADE"), primary_key=True
    )
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    quantity: Mapped[int]


class StockDiscrepancy(IdMixin, Base):
    """A POS sale (or shipment) that took on-hand below zero: the count is wrong somewhere.

    Listed for the store manager until a stocktake or an adjustment resolves it.
    """

    __tablename__ = "stock_discrepancies"
    __table_args__ = (Index("ix_stock_discrepancies_location", "location_id", "id"),)

    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"))
    movement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stock_movements.id"))
    on_hand_after: Mapped[int]
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class ChannelAllocation(IdMixin, TimestampMixin, Base):
    """What a sales channel may sell of a store's ATP: a share, less units kept for walk-ins.

    A rule for one location wins over the channel's chain-wide rule (``location_id`` NULL);
    no rule means the whole ATP. ``share_percent`` 0 keeps the channel out of the store
    (e.g. a marketplace that may sell only from stores A-C: 0 chain-wide, 100 for A-C).
    Channels are touchpoint names (``app``, ``mini_program``, ``pos``) or
    ``marketplace:<name>``.
    """

    __tablename__ = "channel_allocations"
    __table_args__ = (
        CheckConstraint("share_percent BETWEEN 0 AND 100", name="share_percent_range"),
        CheckConstraint("keep_units >= 0", name="keep_units_not_negative"),
        Index(
            "uq_channel_allocations_chain",
            "channel",
            unique=True,
            sqlite_where=text("location_id IS NULL"),
            postgresql_where=text("location_id IS NULL"),
        ),
        Index(
            "uq_channel_allocations_location",
            "channel",
            "location_id",
            unique=True,
            sqlite_where=text("location_id IS NOT NULL"),
            postgresql_where=text("location_id IS NOT NULL"),
        ),
    )

    channel: Mapped[str] = mapped_column(String(48))
    location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    share_percent: Mapped[int] = mapped_column(default=100)
    keep_units: Mapped[int] = mapped_column(default=0)


class TransferStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    SHIPPED = "shipped"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class Transfer(IdMixin, TimestampMixin, Base):
    """Stock moving between two locations: requested, approved, shipped (in transit), received."""

    __tablename__ = "stock_transfers"
    __table_args__ = (
        CheckConstraint("from_location_id <> to_location_id", name="not_to_itself"),
        Index("ix_stock_transfers_from", "from_location_id", "id"),
        Index("ix_stock_transfers_to", "to_location_id", "id"),
    )

    from_location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    to_location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[TransferStatus] = mapped_column(
        str_enum(TransferStatus, length=16), default=TransferStatus.REQUESTED
    )
    note: Mapped[str | None] = mapped_column(String(200))
    requested_by: Mapped[str | None] = mapped_column(String(80))
    approved_by: Mapped[str | None] = mapped_column(String(80))
    shipped_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]

    lines: Mapped[list[TransferLine]] = relationship(
        lazy="selectin", order_by="TransferLine.sku_id", cascade="all, delete-orphan"
    )


class TransferLine(Base):
    __tablename__ = "stock_transfer_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("received_quantity IS NULL OR received_quantity >= 0", name="received"),
    )

    transfer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stock_transfers.id", ondelete="CASCADE"), primary_key=True
    )
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    quantity: Mapped[int]
    received_quantity: Mapped[int | None] = mapped_column(
        doc="Counted on arrival; the difference to `quantity` was lost (or found) in transit."
    )


class StocktakeStatus(StrEnum):
    COUNTING = "counting"
    APPROVED = "approved"
    CANCELLED = "cancelled"


class Stocktake(IdMixin, TimestampMixin, Base):
    """A count of a location's stock, zone by zone, while it keeps selling.

    Each count remembers the on-hand of its moment; on approval the differences are posted
    as one batch of stocktake_variance movements against today's balance.
    """

    __tablename__ = "stocktakes"
    __table_args__ = (Index("ix_stocktakes_location", "location_id", "id"),)

    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[StocktakeStatus] = mapped_column(
        str_enum(StocktakeStatus, length=16), default=StocktakeStatus.COUNTING
    )
    note: Mapped[str | None] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(80))
    approved_at: Mapped[datetime | None]

    counts: Mapped[list[StocktakeCount]] = relationship(
        lazy="selectin", order_by="(StocktakeCount.sku_id, StocktakeCount.zone)"
    )


class StocktakeCount(Base):
    """What one count sheet found of a SKU in one zone, and the on-hand at that moment."""

    __tablename__ = "stocktake_counts"
    __table_args__ = (CheckConstraint("counted >= 0", name="counted_not_negative"),)

    stocktake_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stocktakes.id", ondelete="CASCADE"), primary_key=True
    )
    zone: Mapped[str] = mapped_column(String(32), primary_key=True)
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    counted: Mapped[int]
    on_hand_at_count: Mapped[int] = mapped_column(
        doc="The SKU's on-hand when this sheet was recorded (sales go on during a count)."
    )
    counted_by: Mapped[str | None] = mapped_column(String(80))
    counted_at: Mapped[datetime] = mapped_column(default=utcnow)
