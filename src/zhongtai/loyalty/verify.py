"""Proof that the points books balance: account == sum of lots' remaining == sum of entries,
for spendable and pending points alike."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from zhongtai.loyalty.models import (
    EntryKind,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsLotUse,
)


@dataclass(frozen=True)
class Discrepancy:
    member_id: uuid.UUID | None
    lot_id: uuid.UUID | None
    what: str


@dataclass
class VerifyReport:
    accounts: int = 0
    lots: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.discrepancies


def verify(session: Session) -> VerifyReport:
    """Check every account and lot; a clean report proves no point was made or lost.

    Per member: balance == sum(spendable lots' remaining) == sum(entries' points), pending ==
    sum(pending lots' remaining) == sum(entries' pending changes), debt == sum(entries' debt
    changes), none negative. Per lot: amount - remaining == the points its uses took, and a
    pending lot was taken from by nothing but returns of its own sale.
    """
    report = VerifyReport()
    lots = {
        row[0]: (row[1], row[2])
        for row in session.execute(
            select(
                PointsLot.member_id,
                func.sum(case((PointsLot.pending.is_(False), PointsLot.remaining), else_=0)),
                func.sum(case((PointsLot.pending.is_(True), PointsLot.remaining), else_=0)),
            ).group_by(PointsLot.member_id)
        )
    }
    entries = {
        row[0]: (row[1], row[2], row[3])
        for row in session.execute(
            select(
                PointsEntry.member_id,
                func.sum(PointsEntry.points),
                func.sum(PointsEntry.debt_change),
                func.sum(PointsEntry.pending_change),
            ).group_by(PointsEntry.member_id)
        )
    }
    accounts = {
        a.member_id: (a.balance, a.debt, a.pending) for a in session.scalars(select(PointsAccount))
    }
    report.accounts = len(accounts)
    for member_id in sorted(set(accounts) | set(lots) | set(entries)):
        balance, debt, pending = accounts.get(member_id, (0, 0, 0))
        in_lots, pending_in_lots = (int(v or 0) for v in lots.get(member_id, (0, 0)))
        in_entries, debt_in_entries, pending_in_entries = (
            int(v or 0) for v in entries.get(member_id, (0, 0, 0))
        )
        if balance < 0 or debt < 0 or pending < 0:
            report.discrepancies.append(
                Discrepancy(
                    member_id, None, f"negative balance {balance}, debt {debt} or pending {pending}"
                )
            )
        if not balance == in_lots == in_entries:
            report.discrepancies.append(
                Discrepancy(
                    member_id,
                    None,
                    f"balance {balance}, lots hold {in_lots}, entries sum to {in_entries}",
                )
            )
        if not pending == pending_in_lots == pending_in_entries:
            report.discrepancies.append(
                Discrepancy(
                    member_id,
                    None,
                    f"pending {pending}, pending lots hold {pending_in_lots}, "
                    f"entries sum to {pending_in_entries}",
                )
            )
        if debt != debt_in_entries:
            report.discrepancies.append(
                Discrepancy(member_id, None, f"debt {debt}, entries sum to {debt_in_entries}")
            )
    used = (
        select(PointsLotUse.lot_id, func.sum(PointsLotUse.points).label("used"))
        .group_by(PointsLotUse.lot_id)
        .subquery()
    )
    rows = session.execute(
        select(
            PointsLot.id, PointsLot.member_id, PointsLot.amount, PointsLot.remaining, used.c.used
        ).outerjoin(used, used.c.lot_id == PointsLot.id)
    ).all()
    report.lots = len(rows)
    for lot_id, member_id, amount, remaining, spent in rows:
        if amount - remaining != int(spent or 0):
            report.discrepancies.append(
                Discrepancy(
                    member_id,
                    lot_id,
                    f"lot of {amount} has {remaining} left but its uses took {int(spent or 0)}",
                )
            )
    # Only a return of its own sale takes from a pending lot: anything else spent it.
    spent_pending = session.execute(
        select(PointsLot.id, PointsLot.member_id, PointsEntry.kind)
        .join(PointsLotUse, PointsLotUse.lot_id == PointsLot.id)
        .join(PointsEntry, PointsEntry.id == PointsLotUse.entry_id)
        .where(
            PointsLot.pending.is_(True),
            or_(
                PointsEntry.kind != EntryKind.REVERSE,
                PointsEntry.related_entry_id != PointsLot.entry_id,
            ),
        )
    ).all()
    for lot_id, member_id, kind in spent_pending:
        report.discrepancies.append(
            Discrepancy(member_id, lot_id, f"pending lot was taken from by a {kind.value} entry")
        )
    return report
