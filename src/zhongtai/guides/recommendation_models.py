"""Tables of the guides' recommendations: SKU neighbours, popular SKUs, the builds behind them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zhongtai.core.db import Base, IdMixin


class SkuNeighbour(Base):
    """A SKU often bought by the customers who bought ``sku_id``; ``rank`` 1 is the strongest.

    Written only by a build, which replaces every row at once; serving reads the rows of a
    member's recent SKUs through the primary key.
    """

    __tablename__ = "recommendation_neighbours"
    __table_args__ = (
        CheckConstraint("sku_id <> neighbour_sku_id", name="not_itself"),
        CheckConstraint("score > 0", name="score_positive"),
        CheckConstraint("rank >= 1", name="rank_positive"),
        CheckConstraint("support >= 1", name="support_positive"),
    )

    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    neighbour_sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    score: Mapped[float]
    rank: Mapped[int]
    #: How many customers bought both: what a guide can say out loud ("12 customers ...").
    support: Mapped[int]


class PopularSku(IdMixin, Base):
    """A SKU among the most bought lately, at one store or (``store_id`` NULL) across the chain."""

    __tablename__ = "recommendation_popular_skus"
    __table_args__ = (
        UniqueConstraint("store_id", "sku_id"),
        Index("ix_recommendation_popular_skus_store_rank", "store_id", "rank"),
        CheckConstraint("score > 0", name="score_positive"),
        CheckConstraint("rank >= 1", name="rank_positive"),
        CheckConstraint("buyers >= 1", name="buyers_positive"),
    )

    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"))
    score: Mapped[float]
    rank: Mapped[int]
    buyers: Mapped[int]


class RecommendationBuild(IdMixin, Base):
    """One run of the offline build: what it read and wrote, with which parameters, how long."""

    __tablename__ = "recommendation_builds"
    __table_args__ = (Index("ix_recommendation_builds_built_at", "built_at"),)

    #: The ``now`` of the build: purchases are weighed by their age at this moment.
    built_at: Mapped[datetime]
    history_since: Mapped[datetime]
    orders_read: Mapped[int]
    lines_read: Mapped[int]
    members: Mapped[int]
    skus: Mapped[int]
    neighbour_pairs: Mapped[int]
    popular_rows: Mapped[int]
    #: The model's parameters (top_k, half-life, the blend it chose, ...): serving uses those of
    #: the latest build, and builds can be compared.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The build's check of itself: each member's last order held out and recommended for from
    #: her earlier ones: how many members, and the share with a hit in the first 10, for the
    #: model and for the popular list alone (NULL when no member had two orders).
    checked_members: Mapped[int]
    hit_rate_at_10: Mapped[float | None]
    popularity_hit_rate_at_10: Mapped[float | None]
    duration_ms: Mapped[int]
