"""Event backbone tables: handled events, the relay lease, webhook subscriptions, deliveries."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum


class HandledEvent(Base):
    """A consumer has handled an event: recorded in the transaction of the handler's effects.

    Pruned with the event itself (once the outbox no longer holds an event, nothing can hand it
    to a handler again), by ``event_id``.
    """

    __tablename__ = "handled_events"

    consumer: Mapped[str] = mapped_column(String(160), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    handled_at: Mapped[datetime] = mapped_column(default=utcnow)


class RelayLease(Base):
    """Which relay process delivers now: one holder at a time, taken over once it expires."""

    __tablename__ = "relay_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class WebhookSubscription(IdMixin, TimestampMixin, Base):
    """An integrator's endpoint and the events (and stores) it wants."""

    __tablename__ = "webhook_subscriptions"

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    #: Declared event type names; the subscription receives only these.
    event_types: Mapped[list[str]] = mapped_column(JSON)
    #: Store ids (as strings) to receive; None: every store and chain-wide events.
    store_ids: Mapped[list[str] | None] = mapped_column(JSON)
    #: The HMAC key, sealed (AES-GCM under a key derived from ZHONGTAI_SECRET_KEY, see
    #: ``sealed_secrets.SecretSealer``): the signer opens it, the database never holds it in clear.
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: After a rotation, the secret it replaced (sealed the same way), which signs deliveries
    #: beside the new one until ``previous_secret_expires_at`` (see ``secret_rotation``).
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Every attempt failed; an operator may re-drive it.
    DEAD = "dead"
    #: Ended unsent because its subscription was deactivated (``cancel_reason`` says so); an
    #: operator may re-drive it once the subscription is active again.
    CANCELLED = "cancelled"


class WebhookDelivery(IdMixin, TimestampMixin, Base):
    """One event on its way to one subscription: attempts, the next try, the last error.

    A subscription's deliveries form one lane per aggregate (the event's aggregate type and id):
    a lane goes out strictly in event order, lanes go out side by side, and a lane has at most
    one attempt in flight: the sender claims a delivery (``claim_id``) before it sends it.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_deliveries_queue", "subscription_id", "status", "event_seq"),
        # Pruning finds an old event's deliveries (and whether any still needs the event).
        Index("ix_webhook_deliveries_event", "event_id"),
        # Finding each lane's head reads only pending rows, however many were delivered.
        Index(
            "ix_webhook_deliveries_lanes",
            "subscription_id",
            "aggregate_type",
            "aggregate_id",
            "event_seq",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # The attempts in flight, by lane: a lane with one sends nothing else meanwhile.
        Index(
            "ix_webhook_deliveries_claims",
            "subscription_id",
            "aggregate_type",
            "aggregate_id",
            sqlite_where=text("claim_id IS NOT NULL"),
            postgresql_where=text("claim_id IS NOT NULL"),
        ),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID]
    event_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    event_type: Mapped[str] = mapped_column(String(64))
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    #: Attempts started, each counted once, when the sender claims the delivery to send it.
    attempts: Mapped[int] = mapped_column(default=0)
    #: When the next attempt may start; while an attempt is in flight, when its claim lapses.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The claim of the attempt in flight (until ``next_attempt_at``), None when there is none.
    #: Only that attempt's outcome is recorded, once; a claim that lapses (its sender stopped)
    #: lets another sender try again.
    claim_id: Mapped[uuid.UUID | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Why a cancelled delivery was ended unsent (e.g. its subscription was deactivated).
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
