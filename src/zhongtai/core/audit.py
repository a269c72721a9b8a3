"""The audit log: who changed what sensitive thing, from which request, with before and after.

Every context calls :func:`record_audit` in the transaction of the change (price overrides,
stock adjustments, points adjustments, member merges and erasures, roles and keys). Who and
which request come from :mod:`zhongtai.core.context`. The log is append-only twice over: the
ORM refuses to update or delete an entry, whether by unit of work or by an UPDATE/DELETE
statement (see :func:`_refuse_changes`), and the database refuses it from any client, raw SQL
included: triggers raise on UPDATE and DELETE (and TRUNCATE on PostgreSQL) of ``audit_log``
rows (migration ``0012_webhook_hardening``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index, String, event, select
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin
from zhongtai.core.pagination import PageParams, paginate


class AuditEntry(IdMixin, Base):
    """One sensitive change. Never updated, never deleted."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject", "subject_type", "subject_id"),
        Index("ix_audit_log_at", "at"),
    )

    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: "staff:<uuid>", "api_key:<uuid>", "system:<job>"; None when nobody was identified.
    actor: Mapped[str | None] = mapped_column(String(80), index=True)
    request_id: Mapped[str | None] = mapped_column(String(128))
    #: What happened, "<subject>.<past tense>": "price_override.created", "api_key.revoked".
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AuditLogIsAppendOnly(RuntimeError):
    """An attempt to change or remove an audit entry: a programming error, never a user's."""


def record_audit(
    session: Session,
    action: str,
    subject_type: str,
    subject_id: str | uuid.UUID,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    store_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Add an entry to the session's transaction; it commits (or not) with the change."""
    if "." not in action or action != action.lower():
        raise ValueError(f"audit actions are lower-case 'subject.past_tense': {action!r}")
    entry = AuditEntry(
        at=utcnow(),
        actor=context.actor.get(),
        request_id=context.request_id.get(),
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        store_id=store_id,
        before=_plain(before),
        after=_plain(after),
    )
    session.add(entry)
    return entry


def _plain(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON-safe copy: ids, dates, datetimes and enums as strings."""
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, uuid.UUID | datetime | date):
            out[key] = str(value) if isinstance(value, uuid.UUID) else value.isoformat()
        elif isinstance(value, list | tuple | set | frozenset):
            items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            out[key] = [str(v) if isinstance(v, uuid.UUID) else v for v in items]
        elif hasattr(value, "value") and isinstance(value.value, str):
            out[key] = value.value
        else:
            out[key] = value
    return out


def list_audit_entries(
    session: Session,
    page: PageParams,
    *,
    action: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    actor: str | None = None,
    store_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    within: frozenset[uuid.UUID] | None = None,
) -> tuple[list[AuditEntry], str | None]:
    """Entries matching every given filter, oldest first (ids are time-ordered UUIDv7);
    ``within`` (a store-bound caller's stores) keeps the entries about those stores only, not
    the chain-wide ones."""
    stmt = select(AuditEntry)
    if within is not None:
        stmt = stmt.where(AuditEntry.store_id.in_(within))
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if subject_type is not None:
        stmt = stmt.where(AuditEntry.subject_type == subject_type)
    if subject_id is not None:
        stmt = stmt.where(AuditEntry.subject_id == subject_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if store_id is not None:
        stmt = stmt.where(AuditEntry.store_id == store_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return paginate(session, stmt, [AuditEntry.id], page)


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_unit_of_work_changes(*_args: Any) -> None:
    raise AuditLogIsAppendOnly("audit entries are never changed or deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_changes(state: ORMExecuteState) -> None:
    """Refuse ORM UPDATE/DELETE statements aimed at the audit log."""
    if not (state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and mapper.class_ is AuditEntry:
        raise AuditLogIsAppendOnly("audit entries are never changed or deleted")
