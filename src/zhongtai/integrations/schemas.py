"""Request and response bodies of the webhook and event-stream endpoints."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.integrations.models import DeliveryStatus
from zhongtai.integrations.secret_rotation import DEFAULT_OVERLAP_SECONDS, MAX_OVERLAP_SECONDS


class WebhookSubscriptionCreate(BaseModel):
    url: str = Field(
        min_length=8, max_length=2000, description="http(s) URL that receives POSTed events."
    )
    event_types: list[str] = Field(
        min_length=1, max_length=200, description="Event type names (see docs/events.md)."
    )
    store_ids: list[uuid.UUID] | None = Field(
        default=None, description="Only these stores' events; null: every store and chain events."
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="HMAC key; omit to have one generated. Shown in this response only.",
    )
    description: str = Field(default="", max_length=200)


class WebhookSubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    store_ids: list[uuid.UUID] | None
    active: bool
    created_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="After a secret rotation: until then deliveries are signed with the "
        "previous secret too. Null: only the current secret signs."
    )


class WebhookSubscriptionDeactivated(WebhookSubscriptionOut):
    """The subscription, inactive, and how many of its pending deliveries were cancelled."""

    cancelled_deliveries: int = Field(
        description="Pending deliveries ended by this deactivation (status `cancelled`)."
    )


class WebhookSubscriptionCreated(WebhookSubscriptionOut):
    secret: str | None = Field(
        description="The signing secret: shown once (null on an Idempotency-Key replay)."
    )


class SecretRotation(BaseModel):
    """How long the old signing secret goes on signing beside the new one."""

    overlap_seconds: int = Field(
        default=DEFAULT_OVERLAP_SECONDS,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="Seconds (0 to 7 days) during which requests carry a signature under the "
        "old secret as well, so the receiver can switch when it is ready; 0 switches at once.",
    )


class WebhookSecretRotated(WebhookSubscriptionCreated):
    """The subscription with its new secret (shown once) and the end of the overlap."""


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_seq: int
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    cancel_reason: str | None = Field(
        description="Why a cancelled delivery ended unsent (its subscription was deactivated)."
    )


class RedrivenStatus(enum.StrEnum):
    """The deliveries of a subscription that a re-drive sends again."""

    DEAD = DeliveryStatus.DEAD.value
    CANCELLED = DeliveryStatus.CANCELLED.value


class RedriveResult(BaseModel):
    redriven: int = Field(description="How many dead (or cancelled) deliveries are pending again.")
