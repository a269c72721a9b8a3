"""Tables of store fulfilment: per-store promise settings, tasks and courier dispatches."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum


class FulfillmentProfile(TimestampMixin, Base):
    """How fast a store works and how far its riders go, for the delivery promise.

    A store without a row uses the defaults of :class:`zhongtai.fulfillment.rules.PromiseSettings`.
    """

    __tablename__ = "fulfillment_profiles"
    __table_args__ = (
        CheckConstraint(
            "avg_pick_seconds > 0 AND pick_pack_seconds >= 0 AND per_line_seconds >= 0",
            name="times_positive",
        ),
        CheckConstraint("road_factor >= 1 AND rider_speed_m_per_min > 0", name="travel_sane"),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True
    )
    avg_pick_seconds: Mapped[int] = mapped_column(doc="Average time one queued task takes.")
    pick_pack_seconds: Mapped[int]
    per_line_seconds: Mapped[int]
    handover_seconds: Mapped[int]
    road_factor: Mapped[float]
    rider_speed_m_per_min: Mapped[int]
    service_prep_seconds: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)


class TaskStatus(StrEnum):
    OPEN = "open"
    PICKING = "picking"
    PACKED = "packed"
    HANDED_OVER = "handed_over"  # to the customer (pickup) or the rider/carrier
    CANCELLED = "cancelled"


class FulfillmentTask(IdMixin, TimestampMixin, Base):
    """The work a store does for one order: pick, pack, hand over, against an SLA clock."""

    __tablename__ = "fulfillment_tasks"
    __table_args__ = (
        Index("ix_fulfillment_tasks_queue", "location_id", "status", "due_at"),
        # The SLA sweeper looks only at unfinished tasks not yet flagged.
        Index(
            "ix_fulfillment_tasks_sla",
            "due_at",
            sqlite_where=text("sla_breached_at IS NULL AND status IN ('open', 'picking')"),
            postgresql_where=text("sla_breached_at IS NULL AND status IN ('open', 'picking')"),
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[TaskStatus] = mapped_column(
        str_enum(TaskStatus, length=16), default=TaskStatus.OPEN
    )
    due_at: Mapped[datetime] = mapped_column(doc="When the goods must be packed (SLA).")
    picker: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime | None]
    packed_at: Mapped[datetime | None]
    handed_over_at: Mapped[datetime | None]
    packages: Mapped[int | None] = mapped_column(doc="Bags or boxes packed.")
    sla_breached_at: Mapped[datetime | None]


class DispatchStatus(StrEnum):
    REQUESTED = "requested"
    ASSIGNED = "assigned"
    ARRIVED_AT_STORE = "arrived_at_store"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CourierDispatch(IdMixin, TimestampMixin, Base):
    """A delivery handed to a courier service, followed through its signed status callbacks."""

    __tablename__ = "courier_dispatches"
    #: The courier watch's question: which booked jobs have been quiet longest.
    __table_args__ = (Index("ix_courier_dispatches_status_updated_at", "status", "updated_at"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    courier_ref: Mapped[str | None] = mapped_column(String(128), unique=True)
    status: Mapped[DispatchStatus] = mapped_column(
        str_enum(DispatchStatus, length=24), default=DispatchStatus.REQUESTED
    )
    #: The highest callback sequence applied: repeated or stale callbacks change nothing.
    last_sequence: Mapped[int] = mapped_column(default=0)
    rider: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    estimated_delivery_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    #: Where the platform was told to call back: a rider booked again in its place is told the
    #: same (None for dispatches booked before it was kept).
    callback_url: Mapped[str | None] = mapped_column(String(1024))
    #: When the courier watch last found the job, quiet, still on at the platform.
    checked_at: Mapped[datetime | None]
    parcel_unaccounted_at: Mapped[datetime | None] = mapped_column(
        doc="When the courier watch found the platform no longer knew the job while its rider "
        "had the parcel (announced once)."
    )


class MissedPromise(Base):
    """A promise the chain did not keep: the order was not delivered (a pickup or try-on: not
    ready) by the moment its checkout promised the customer. One row per order, written once by
    the promise clock (:mod:`zhongtai.fulfillment.promise_clock`); the stores' lists of missed
    promises and the guides' late-order tasks are read from here (the on-time rate reads the
    orders themselves)."""

    __tablename__ = "missed_promises"
    __table_args__ = (Index("ix_missed_promises_store", "store_id", "detected_at"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    fulfillment_type: Mapped[str] = mapped_column(String(16))
    promised_by: Mapped[datetime]
    order_status: Mapped[str] = mapped_column(
        String(24), doc="Where the order stood when the promise was found missed."
    )
    detected_at: Mapped[datetime]
