"""Request and response bodies of the marketplace connection endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.integrations.marketplace import MAX_INTERVAL_MS, MIN_INTERVAL_MS, NAME_PATTERN
from zhongtai.inventory.rules import CHANNEL_PATTERN


class ConnectionCreate(BaseModel):
    name: str = Field(
        pattern=NAME_PATTERN,
        description="The marketplace's name, e.g. `meituan`.",
        examples=["meituan"],
    )
    endpoint_url: str = Field(
        min_length=8, max_length=2000, description="http(s) URL that receives the stock pushes."
    )
    channel: str | None = Field(
        default=None,
        pattern=CHANNEL_PATTERN,
        description="The channel allocation whose ATP is pushed (default `marketplace:<name>`).",
        examples=["marketplace:meituan", "marketplace"],
    )
    store_ids: list[uuid.UUID] | None = Field(
        default=None, description="The stores it sells from; null: every store of the chain."
    )
    min_interval_ms: int = Field(
        default=1000,
        ge=MIN_INTERVAL_MS,
        le=MAX_INTERVAL_MS,
        description="At most one push per store and SKU within this many milliseconds.",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="HMAC key; omit to have one generated. Shown in this response only.",
    )


class ConnectionChange(BaseModel):
    """Only the fields sent change; `store_ids: null` means every store."""

    endpoint_url: str | None = Field(default=None, min_length=8, max_length=2000)
    min_interval_ms: int | None = Field(default=None, ge=MIN_INTERVAL_MS, le=MAX_INTERVAL_MS)
    active: bool | None = None
    store_ids: list[uuid.UUID] | None = None


class ConnectionOut(BaseModel):
    id: uuid.UUID
    name: str
    channel: str
    endpoint_url: str
    store_ids: list[uuid.UUID] | None = Field(description="null: every store of the chain.")
    min_interval_ms: int
    active: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="After a secret rotation: until then pushes are signed with the previous "
        "secret too. Null: only the current secret signs."
    )


class ConnectionCreated(ConnectionOut):
    secret: str | None = Field(
        description="The signing secret: shown once (null on an Idempotency-Key replay)."
    )


class ConnectionSecretRotated(ConnectionCreated):
    """The connection with its new secret (shown once) and the end of the overlap."""


class ResyncResult(BaseModel):
    marked: int = Field(description="How many (store, SKU) pairs will be pushed again.")


class StockPushOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    location_id: uuid.UUID
    sku_id: uuid.UUID
    version: int = Field(description="Stock changes seen for this SKU at this store.")
    pushed_version: int = Field(description="The last version the marketplace acknowledged.")
    pushed_quantity: int | None = Field(description="The quantity that version carried.")
    pushed_at: datetime | None
    due_at: datetime = Field(description="When it may go out next (interval or backoff).")
    failures: int = Field(description="Failed pushes since the last success.")
    last_error: str | None
