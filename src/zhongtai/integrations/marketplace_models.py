"""Marketplace connection tables: the connections, their stores, and each SKU's stock-push state."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin, TimestampMixin


class MarketplaceConnection(IdMixin, TimestampMixin, Base):
    """A marketplace (Meituan, Ele.me, JD Daojia, ...) that receives the stores' sellable stock.

    ``channel`` is the channel allocation whose ATP is pushed (``marketplace`` or
    ``marketplace:<name>``), so what the marketplace shows is what it may sell.
    """

    __tablename__ = "marketplace_connections"

    name: Mapped[str] = mapped_column(String(48), unique=True)
    channel: Mapped[str] = mapped_column(String(48))
    endpoint_url: Mapped[str] = mapped_column(String(2000))
    #: The HMAC key, sealed (AES-GCM under a key derived from ZHONGTAI_SECRET_KEY, see
    #: ``marketplace.marketplace_secrets``): the sender opens it to sign, the database never
    #: holds it in clear, and the caller saw it once, when connecting.
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: After a rotation, the secret it replaced (sealed the same way), which signs pushes
    #: beside the new one until ``previous_secret_expires_at`` (see ``secret_rotation``).
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]
    #: Every store of the chain (True), or only those in ``marketplace_connection_stores``.
    all_stores: Mapped[bool] = mapped_column(default=True)
    #: At most one push per (store, SKU) within this many milliseconds, however many changes.
    min_interval_ms: Mapped[int] = mapped_column(default=1000)
    active: Mapped[bool] = mapped_column(default=True)


class MarketplaceConnectionStore(Base):
    """One store a connection sells from (when it does not sell from every store)."""

    __tablename__ = "marketplace_connection_stores"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketplace_connections.id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), primary_key=True)


class MarketplaceStockPush(Base):
    """Where one SKU's sellable quantity at one store stands with one connection.

    ``version`` counts the stock changes seen; ``pushed_version`` the last one the marketplace
    acknowledged. A row is *dirty* while ``version > pushed_version`` and goes out once
    ``due_at`` has come (the coalescing interval after the last push, or a failure's backoff).
    """

    __tablename__ = "marketplace_stock_pushes"
    __table_args__ = (
        # The sender's poll reads only dirty rows: the partial index keeps it off the clean ones.
        Index(
            "ix_marketplace_stock_pushes_dirty",
            "due_at",
            postgresql_where=text("version > pushed_version"),
            sqlite_where=text("version > pushed_version"),
        ),
    )

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketplace_connections.id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    pushed_version: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), default=0
    )
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Failed attempts since the last success (the backoff grows with them).
    failures: Mapped[int] = mapped_column(default=0)
    pushed_at: Mapped[datetime | None]
    pushed_quantity: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
