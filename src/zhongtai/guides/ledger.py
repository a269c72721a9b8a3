"""The guides' commission ledger: booking an entry exactly once, the month it counts in, and
pending commission becoming payable when the return window has closed."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.money import yuan
from zhongtai.guides.commission_rules import CommissionBasis, CommissionRule
from zhongtai.guides.models import (
    ClosedMonth,
    CommissionEntry,
    CommissionKind,
    CommissionStatus,
    Guide,
)
from zhongtai.orders.codes import business_date
from zhongtai.stores.models import Location


def describe_rule(rule: CommissionRule, name: str | None) -> str:
    label = f" (rule {name!r})" if name else ""
    if rule.basis is CommissionBasis.PERCENT:
        return f"{rule.rate_bp / 100:.2f}%{label}"
    return f"{yuan(rule.amount_per_item)} per item{label}"


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def booking_month(session: Session, at: datetime, store_id: uuid.UUID) -> date:
    """The statement month of a moment in the store's business calendar; a closed month takes
    nothing more, so late entries land in the first open month after it."""
    store = session.get(Location, store_id)
    zone = store.timezone if store else "UTC"
    month = first_of_month(business_date(at, zone))
    closed = set(session.scalars(select(ClosedMonth.month).where(ClosedMonth.month >= month)))
    while month in closed:
        month = next_month(month)
    return month


def book_entry(
    session: Session,
    *,
    guide: Guide,
    kind: CommissionKind,
    amount: int,
    month: date,
    status: CommissionStatus,
    payable_at: datetime,
    source_ref: str,
    reason: str,
    attribution_id: uuid.UUID | None = None,
    order_id: uuid.UUID | None = None,
    rule_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    store_id: uuid.UUID | None = None,
) -> CommissionEntry:
    """Add the entry unless one of this kind and source is booked already (then return it)."""
    existing = session.scalar(
        select(CommissionEntry).where(
            CommissionEntry.kind == kind, CommissionEntry.source_ref == source_ref
        )
    )
    if existing is not None:
        return existing
    entry = CommissionEntry(
        guide_id=guide.staff_id,
        store_id=store_id or guide.home_store_id,
        month=month,
        kind=kind,
        amount=amount,
        status=status,
        payable_at=payable_at,
        source_ref=source_ref[:128],
        attribution_id=attribution_id,
        order_id=order_id,
        rule_id=rule_id,
        reason=reason[:300],
        details=details or {},
        actor=context.actor.get(),
    )
    session.add(entry)
    session.flush()
    return entry


def mature_commission(session: Session, *, now: datetime) -> int:
    """Pending commission whose return window has closed becomes payable; how many entries."""
    result = session.execute(
        update(CommissionEntry)
        .where(
            CommissionEntry.status == CommissionStatus.PENDING,
            CommissionEntry.payable_at <= now,
        )
        .values(status=CommissionStatus.PAYABLE)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
