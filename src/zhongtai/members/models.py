"""Tables of members, their identities at each touchpoint, consent records and merges."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum


class MemberStatus(StrEnum):
    ACTIVE = "active"
    #: Found twice: this record now only points at the survivor.
    MERGED = "merged"
    #: Pseudonymised on request: no personal data is left, the ledgers stay.
    ERASED = "erased"


class IdentityKind(StrEnum):
    PHONE = "phone"
    WECHAT_OPENID = "wechat_openid"
    WECHAT_UNIONID = "wechat_unionid"
    APP_USER_ID = "app_user_id"
    POS_CARD = "pos_card"
    MARKETPLACE_BUYER = "marketplace_buyer"


class ConsentChannel(StrEnum):
    SMS = "sms"
    WECOM = "wecom"
    APP_PUSH = "app_push"


class Member(IdMixin, TimestampMixin, Base):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(
            "(status = 'merged') = (merged_into_id IS NOT NULL)", name="merged_has_survivor"
        ),
        CheckConstraint("merged_into_id IS NULL OR merged_into_id <> id", name="not_self_merged"),
    )

    status: Mapped[MemberStatus] = mapped_column(
        str_enum(MemberStatus, length=16), default=MemberStatus.ACTIVE
    )
    #: Set when merged: lookups by this member's id answer the survivor (always one hop).
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    birthday: Mapped[date | None]
    preferred_store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    #: Sizes and preferences, e.g. {"shoe_size": "37", "top_size": "M", "diet": "no pork"}.
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The touchpoint that registered her: pos, app, mini_program, guide, marketplace, ...
    registered_via: Mapped[str] = mapped_column(String(32))
    registered_store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    erased_at: Mapped[datetime | None]


class MemberIdentity(IdMixin, Base):
    """How a touchpoint knows her. (kind, lookup_key) is unique across all members.

    For phones ``lookup_key`` is a keyed hash (HMAC-SHA256) and the number itself is kept only
    AES-GCM encrypted in ``ciphertext``; other kinds are opaque ids stored as given.
    """

    __tablename__ = "member_identities"
    __table_args__ = (UniqueConstraint("kind", "lookup_key"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[IdentityKind] = mapped_column(str_enum(IdentityKind))
    lookup_key: Mapped[str] = mapped_column(String(128))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentRecord(IdMixin, Base):
    """One change of marketing consent; the latest per channel is the member's current choice."""

    __tablename__ = "member_consents"
    __table_args__ = (Index("ix_member_consents_member_channel", "member_id", "channel"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    channel: Mapped[ConsentChannel] = mapped_column(str_enum(ConsentChannel, length=16))
    granted: Mapped[bool]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Where she gave or withdrew it: "pos", "app", "guide", "mini_program", "hq", ...
    source: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(80))


class MemberMerge(IdMixin, Base):
    """The trace of one merge: who merged which member into which, and what moved."""

    __tablename__ = "member_merges"

    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    merged_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), unique=True)
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))
    request_id: Mapped[str | None] = mapped_column(String(128))
    #: What moved, by step: {"identities": [ids], "consents": n, "points": {...}, ...}.
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
