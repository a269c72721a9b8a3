"""Request and response bodies of the members endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from zhongtai.members.models import ConsentChannel, IdentityKind, MemberStatus

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
PreferenceKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
PreferenceValue = Annotated[str, StringConstraints(max_length=64)] | int | bool


class IdentityIn(BaseModel):
    kind: IdentityKind
    value: str = Field(
        min_length=1,
        max_length=128,
        description="Phones: a mainland mobile number (+86 and separators allowed); "
        "other kinds: the id the touchpoint issued.",
        examples=["13812341234"],
    )


class IdentifyIn(IdentityIn):
    create: bool = Field(
        default=True, description="Create the member on first sight (false: 404 when unknown)."
    )
    name: str | None = Field(default=None, min_length=1, max_length=100)
    birthday: date | None = None
    store_id: uuid.UUID | None = Field(default=None, description="The store she registered in.")


class ProfileIn(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    birthday: date | None = None
    preferred_store_id: uuid.UUID | None = None
    preferences: dict[PreferenceKey, PreferenceValue] | None = Field(
        default=None,
        max_length=50,
        description='Sizes and preferences, e.g. {"shoe_size": "37", "top_size": "M"}.',
    )
    tags: list[Tag] | None = Field(default=None, max_length=50)


class ConsentIn(BaseModel):
    granted: bool


class IdentityOut(BaseModel):
    kind: IdentityKind
    value: str = Field(description="Masked (138****1234) unless the caller may see PII.")
    masked: bool


class ConsentOut(BaseModel):
    channel: ConsentChannel
    granted: bool
    recorded_at: datetime | None
    source: str | None


class MemberOut(BaseModel):
    id: uuid.UUID
    status: MemberStatus
    name: str | None
    birthday: date | None
    preferred_store_id: uuid.UUID | None
    preferences: dict[str, Any]
    tags: list[str]
    registered_via: str
    registered_store_id: uuid.UUID | None
    created_at: datetime
    identities: list[IdentityOut]
    consents: list[ConsentOut]


class IdentifyOut(BaseModel):
    created: bool
    member: MemberOut


class MergeIn(BaseModel):
    merged_member_id: uuid.UUID = Field(
        description="The duplicate: it becomes a pointer to the member in the path."
    )


class MergeOut(BaseModel):
    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    merged_at: datetime
    moved: dict[str, Any]
