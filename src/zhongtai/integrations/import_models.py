"""Table of back-office import batches: what each batch loaded, and its reconciliation report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
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
