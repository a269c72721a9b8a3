"""Request and response bodies of the auth, staff and API key endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.core.auth.principal import TERMINAL_ID, TERMINAL_ID_RULE
from zhongtai.core.auth.roles import Channel, Permission, Role


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class StaffOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    is_active: bool
    store_ids: list[uuid.UUID]
    created_at: datetime


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_at: datetime
    user: StaffOut


class StaffCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-zA-Z0-9_.@-]+$")
    display_name: str = Field(min_length=1, max_length=100)
    role: Role
    password: str = Field(min_length=10, max_length=256)
    store_ids: list[uuid.UUID] = Field(default_factory=list)


class StaffUpdate(BaseModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Role | None = None
    is_active: bool | None = None
    store_ids: list[uuid.UUID] | None = None
    password: str | None = Field(default=None, min_length=10, max_length=256)


class MeOut(BaseModel):
    kind: str
    id: uuid.UUID
    name: str
    role: Role | None
    channel: Channel | None
    terminal_id: str | None
    permissions: list[Permission]
    store_ids: list[uuid.UUID] | None = Field(description="null: the whole chain")


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    channel: Channel
    scopes: list[Permission] | None = Field(
        default=None, description="Defaults to the channel's standard scopes."
    )
    store_id: uuid.UUID | None = Field(default=None, description="Required for pos keys.")
    terminal_id: str | None = Field(
        default=None,
        pattern=f"^{TERMINAL_ID.pattern}$",
        description=f"Required for pos keys: {TERMINAL_ID_RULE}.",
        examples=["T01"],
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    channel: Channel
    scopes: list[str]
    store_id: uuid.UUID | None
    terminal_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str | None = Field(
        description="The full key. Shown once; store it in the touchpoint now. "
        "Null in an Idempotency-Key replay: the secret is never stored."
    )
