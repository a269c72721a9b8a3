"""Tables of back-office import batches: what each batch loaded, its reconciliation report, and
the stores it belongs to."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin


class ImportBatch(IdMixin, Base):
    """A back-office batch (product master, prices, stock snapshot) as it was loaded: its id is
    the sender's, bound to its content, so a resent batch loads nothing twice."""

    __tablename__ = "import_batches"

    batch_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64))
    rows_total: Mapped[int]
    rows_loaded: Mapped[int]
    rows_rejected: Mapped[int]
    #: The reconciliation report: one entry per row (line, outcome, what changed or why not).
    report: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(80))
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportBatchStore(Base):
    """One store a batch belongs to: the stores its rows name (a store-bound sender's own
    stores when they name none of them). A caller bound to stores reads a batch only when all
    of its stores are the caller's; a batch of no store (a product master from HQ) is HQ's."""

    __tablename__ = "import_batch_stores"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("import_batches.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id"), primary_key=True, index=True
    )
