"""Request and response bodies of the webhook and event-stream endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.integrations.models import DeliveryStatus


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


class WebhookSubscriptionCreated(WebhookSubscriptionOut):
    secret: str | None = Field(
        description="The signing secret: shown once (null on an Idempotency-Key replay)."
    )


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


class RedriveResult(BaseModel):
    redriven: int = Field(description="How many dead deliveries are pending again.")
