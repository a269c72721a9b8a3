"""Commission statements: a guide's month (every entry with its reason), a store's month (one
row per guide), and the payroll export of a month as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from zhongtai.core.auth.models import StaffUser
from zhongtai.guides.models import (
    ClosedMonth,
    CommissionEntry,
    CommissionKind,
    CommissionStatus,
    Guide,
    LineAttribution,
)


@dataclass(frozen=True)
class Totals:
    earned: int = 0
    reversed: int = 0
    adjustments: int = 0
    target_bonus: int = 0
    pending: int = 0
    payable: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.payable


@dataclass(frozen=True)
class GuideStatement:
    guide_id: uuid.UUID
    guide_name: str
    store_id: uuid.UUID
    month: date
    closed: bool
    #: Net attributed sales of the month's earned lines, after returns.
    attributed_sales: int
    totals: Totals
    entries: list[CommissionEntry] = field(default_factory=list)


_SUMS = (
    func.sum(
        case((CommissionEntry.kind == CommissionKind.EARNED, CommissionEntry.amount), else_=0)
    ),
    func.sum(
        case((CommissionEntry.kind == CommissionKind.REVERSED, CommissionEntry.amount), else_=0)
    ),
    func.sum(
        case((CommissionEntry.kind == CommissionKind.ADJUSTMENT, CommissionEntry.amount), else_=0)
    ),
    func.sum(
        case((CommissionEntry.kind == CommissionKind.TARGET_BONUS, CommissionEntry.amount), else_=0)
    ),
    func.sum(
        case((CommissionEntry.status == CommissionStatus.PENDING, CommissionEntry.amount), else_=0)
    ),
    func.sum(
        case((CommissionEntry.status == CommissionStatus.PAYABLE, CommissionEntry.amount), else_=0)
    ),
)


def _totals(row: tuple[object, ...]) -> Totals:
    return Totals(*(int(v or 0) for v in row))  # type: ignore[call-overload]


def attributed_sales(
    session: Session, month: date, guide_ids: set[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Net attributed sales (after returns) per guide of the month's earned entries."""
    rows = session.execute(
        select(
            CommissionEntry.guide_id,
            func.sum(LineAttribution.net_amount - LineAttribution.refunded_amount),
        )
        .join(LineAttribution, CommissionEntry.attribution_id == LineAttribution.id)
        .where(
            CommissionEntry.kind == CommissionKind.EARNED,
            CommissionEntry.month == month,
            CommissionEntry.guide_id.in_(guide_ids),
        )
        .group_by(CommissionEntry.guide_id)
    )
    return {gid: int(v or 0) for gid, v in rows}


def guide_statement(session: Session, guide: Guide, month: date) -> GuideStatement:
    entries = list(
        session.scalars(
            select(CommissionEntry)
            .where(CommissionEntry.guide_id == guide.staff_id, CommissionEntry.month == month)
            .order_by(CommissionEntry.created_at, CommissionEntry.id)
        )
    )
    row = session.execute(
        select(*_SUMS).where(
            CommissionEntry.guide_id == guide.staff_id, CommissionEntry.month == month
        )
    ).one()
    name = session.scalar(select(StaffUser.display_name).where(StaffUser.id == guide.staff_id))
    return GuideStatement(
        guide_id=guide.staff_id,
        guide_name=name or "",
        store_id=guide.home_store_id,
        month=month,
        closed=session.get(ClosedMonth, month) is not None,
        attributed_sales=attributed_sales(session, month, {guide.staff_id}).get(guide.staff_id, 0),
        totals=_totals(tuple(row)),
        entries=entries,
    )


@dataclass(frozen=True)
class StatementRow:
    guide_id: uuid.UUID
    guide_name: str
    username: str
    store_id: uuid.UUID
    attributed_sales: int
    totals: Totals


def month_statements(
    session: Session, month: date, *, store_id: uuid.UUID | None = None
) -> list[StatementRow]:
    """One row per guide with entries in the month (of one store, or all), by store and name."""
    stmt = (
        select(CommissionEntry.guide_id, CommissionEntry.store_id, *_SUMS)
        .where(CommissionEntry.month == month)
        .group_by(CommissionEntry.guide_id, CommissionEntry.store_id)
    )
    if store_id is not None:
        stmt = stmt.where(CommissionEntry.store_id == store_id)
    rows = session.execute(stmt).all()
    ids = {r[0] for r in rows}
    names = {
        uid: (display, username)
        for uid, display, username in session.execute(
            select(StaffUser.id, StaffUser.display_name, StaffUser.username).where(
                StaffUser.id.in_(ids)
            )
        )
    }
    sales = attributed_sales(session, month, ids)
    result = [
        StatementRow(
            guide_id=r[0],
            guide_name=names.get(r[0], ("", ""))[0],
            username=names.get(r[0], ("", ""))[1],
            store_id=r[1],
            attributed_sales=sales.get(r[0], 0),
            totals=_totals(tuple(r[2:])),
        )
        for r in rows
    ]
    return sorted(result, key=lambda s: (str(s.store_id), s.username))


PAYROLL_COLUMNS = (
    "month",
    "store_id",
    "guide_id",
    "username",
    "guide_name",
    "attributed_sales_fen",
    "earned_fen",
    "reversed_fen",
    "adjustments_fen",
    "target_bonus_fen",
    "payable_fen",
    "pending_fen",
)


def payroll_csv(session: Session, month: date, *, store_id: uuid.UUID | None = None) -> str:
    """The month for payroll: what each guide is to be paid (payable) and what still waits."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAYROLL_COLUMNS)
    for row in month_statements(session, month, store_id=store_id):
        t = row.totals
        writer.writerow(
            (
                f"{month:%Y-%m}",
                row.store_id,
                row.guide_id,
                row.username,
                row.guide_name,
                row.attributed_sales,
                t.earned,
                t.reversed,
                t.adjustments,
                t.target_bonus,
                t.payable,
                t.pending,
            )
        )
    return out.getvalue()
