"""Tables of staff users, their stores, login sessions, channel API keys and failed attempts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum


class StaffUser(IdMixin, TimestampMixin, Base):
    __tablename__ = "staff_users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(str_enum(Role, length=20))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    stores: Mapped[list[StaffStore]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def store_ids(self) -> list[uuid.UUID]:
        return [s.store_id for s in self.stores]


class StaffStore(Base):
    """A staff user's assignment to a store; store roles act only within these stores."""

    __tablename__ = "staff_stores"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    user: Mapped[StaffUser] = relationship(back_populates="stores")


class AuthSession(IdMixin, Base):
    """One login. The access token carries its id; logout revokes it before it expires."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    client_ip: Mapped[str | None] = mapped_column(String(64))


class ApiKey(IdMixin, TimestampMixin, Base):
    """A touchpoint's credential. Only a hash of the secret is kept; the key is shown once."""

    __tablename__ = "api_keys"

    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, length=20))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    terminal_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuthFailure(IdMixin, Base):
    """A failed login or key check; counted per subject and per client address for throttling."""

    __tablename__ = "auth_failures"
    __table_args__ = (
        Index("ix_auth_failures_subject_at", "kind", "subject", "at"),
        Index("ix_auth_failures_ip_at", "kind", "client_ip", "at"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(128))
    client_ip: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
