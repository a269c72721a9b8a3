"""Tables of the shopping guides' daily tasks: one row per guide, member and occurrence."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin, str_enum
from zhongtai.guides.task_kinds import EXPLANATION_MAX, TaskKind
from zhongtai.guides.task_states import TaskStatus


class GuideTask(IdMixin, Base):
    """A task on a guide's list for one of her customers.

    ``period_key`` names the occurrence (``birthday:2027``, ``pickup_waiting:<order id>``): the
    unique (guide, member, occurrence) makes a daily run idempotent, and a task she closed
    stays closed for that occurrence. When the member moves to another guide, the open task is
    expired and the new guide gets a row of her own.
    """

    __tablename__ = "guide_tasks"
    __table_args__ = (
        UniqueConstraint("guide_id", "member_id", "period_key"),
        Index("ix_guide_tasks_guide_status_due", "guide_id", "status", "due_on"),
        Index("ix_guide_tasks_member_period", "member_id", "period_key"),
        Index("ix_guide_tasks_status_store", "status", "store_id"),
        CheckConstraint("(status = 'open') = (closed_at IS NULL)", name="closed_unless_open"),
        CheckConstraint("priority >= 1", name="priority_positive"),
    )

    guide_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guides.staff_id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    #: The guide's home store when the task was made: the store manager's view.
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    kind: Mapped[TaskKind] = mapped_column(str_enum(TaskKind, length=16))
    period_key: Mapped[str] = mapped_column(String(64))
    #: The store-local day the task was put (or put back) on her list.
    due_on: Mapped[date]
    status: Mapped[TaskStatus] = mapped_column(
        str_enum(TaskStatus, length=8), default=TaskStatus.OPEN
    )
    #: 1 comes first.
    priority: Mapped[int]
    explanation: Mapped[str] = mapped_column(String(EXPLANATION_MAX))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    #: Who closed it ("staff:<id>"); None when it expired.
    closed_by: Mapped[str | None] = mapped_column(String(80))
    #: The guide's note on what came of it, or why the task expired.
    outcome_note: Mapped[str | None] = mapped_column(String(500))
