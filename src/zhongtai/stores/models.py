"""Tables of locations (stores, warehouses, DCs), opening hours, capabilities and pilot rules."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum


class LocationKind(StrEnum):
    STORE = "store"
    WAREHOUSE = "warehouse"
    DC = "dc"


class LocationStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Capability(StrEnum):
    """What a location can do for customers. Each can also be rolled out by pilot rules."""

    PICKUP = "pickup"
    DELIVERY = "delivery"
    SHIP_FROM_STORE = "ship_from_store"
    IN_STORE_SERVICES = "in_store_services"


class Location(IdMixin, TimestampMixin, Base):
    __tablename__ = "locations"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[LocationKind] = mapped_column(str_enum(LocationKind, length=16))
    status: Mapped[LocationStatus] = mapped_column(
        str_enum(LocationStatus, length=16), default=LocationStatus.ACTIVE
    )
    region: Mapped[str] = mapped_column(String(64), index=True)
    city: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(255))
    latitude: Mapped[float]
    longitude: Mapped[float]
    timezone: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))

    capabilities: Mapped[list[LocationCapability]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="LocationCapability.capability"
    )
    hours: Mapped[list[OpeningHours]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="(OpeningHours.weekday, OpeningHours.opens_at)",
    )


class LocationCapability(Base):
    """A capability a location physically has; pilot rules decide whether it is switched on."""

    __tablename__ = "location_capabilities"
    __table_args__ = (
        CheckConstraint(
            "delivery_radius_m IS NULL OR delivery_radius_m > 0", name="radius_positive"
        ),
        CheckConstraint(
            "capability <> 'delivery' OR delivery_radius_m IS NOT NULL",
            name="delivery_has_radius",
        ),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True
    )
    capability: Mapped[Capability] = mapped_column(
        str_enum(Capability, length=32), primary_key=True
    )
    delivery_radius_m: Mapped[int | None] = mapped_column(
        doc="For delivery: how far from the store a rider goes, in metres."
    )
    services: Mapped[list[str]] = mapped_column(
        JSON, default=list, doc="For in-store services: e.g. fish_cleaning, alterations."
    )
    paused_until: Mapped[datetime | None] = mapped_column(
        doc="The store takes no orders of this capability until then (short of hands, a "
        "machine down); None: not paused."
    )
    pause_reason: Mapped[str | None] = mapped_column(String(200))


class OpeningHours(IdMixin, Base):
    """A weekly opening span. ``closes_at`` earlier than ``opens_at`` runs past midnight."""

    __tablename__ = "opening_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        UniqueConstraint("location_id", "weekday", "opens_at"),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(doc="0 = Monday ... 6 = Sunday")
    opens_at: Mapped[time]
    closes_at: Mapped[time]


class OpeningException(IdMixin, Base):
    """A dated exception: closed for the day, or special hours (holidays, stocktake)."""

    __tablename__ = "opening_exceptions"
    __table_args__ = (
        UniqueConstraint("location_id", "on_date"),
        CheckConstraint(
            "(closed AND opens_at IS NULL AND closes_at IS NULL)"
            " OR (NOT closed AND opens_at IS NOT NULL AND closes_at IS NOT NULL)",
            name="closed_or_hours",
        ),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), index=True
    )
    on_date: Mapped[date]
    closed: Mapped[bool] = mapped_column(default=False)
    opens_at: Mapped[time | None]
    closes_at: Mapped[time | None]
    note: Mapped[str | None] = mapped_column(String(200))


class PilotScope(StrEnum):
    CHAIN = "chain"
    REGION = "region"
    STORE = "store"
    CATEGORY = "category"


class PilotRule(IdMixin, TimestampMixin, Base):
    """Turns a feature on or off for the chain, a region, a store or a category (and below).

    ``feature`` is a capability name or any later feature key (e.g. ``guide_commission``).
    """

    __tablename__ = "pilot_rules"
    __table_args__ = (
        UniqueConstraint("feature", "scope", "scope_value"),
        CheckConstraint("scope <> 'chain' OR scope_value = '*'", name="chain_value_star"),
    )

    feature: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[PilotScope] = mapped_column(str_enum(PilotScope, length=16))
    scope_value: Mapped[str] = mapped_column(
        String(64), doc="'*' for chain; region name; store id; category id"
    )
    enabled: Mapped[bool]
    note: Mapped[str | None] = mapped_column(String(200))
