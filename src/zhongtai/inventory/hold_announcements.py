"""The stock events of a batch of holds: one ``stock.changed`` per balance row it took from.

A batch may hold many baskets on one row; subscribers care about the row's figures, not the
baskets, so the batch announces each changed row once (with low/out of stock when it crosses),
in one INSERT of outbox rows, on behalf of whoever took from it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from zhongtai.inventory.hold_judging import BalanceKey, BatchRow
from zhongtai.inventory.hold_requests import HoldRequest
from zhongtai.inventory.ledger import Change, Figures, announce_many
from zhongtai.inventory.rules import atp


def announce_holds(
    session: Session,
    requests: list[HoldRequest],
    rows: dict[BalanceKey, BatchRow],
    figures: dict[BalanceKey, Figures],
) -> None:
    """One stock.changed per changed row (with low/out); the actor and request id are named
    only when every basket that took from the row shares them."""
    changes = []
    for key, row in sorted(rows.items()):
        if not row.added:
            continue
        after = figures[key]
        takers = [requests[i] for i in sorted(row.takers)]
        actors = {r.actor for r in takers}
        request_ids = {r.request_id for r in takers}
        changes.append(
            Change(
                after,
                cause="reserved",
                quantity=row.added,
                atp_before=atp(after.on_hand, after.reserved - row.added, after.safety_stock),
                actor=actors.pop() if len(actors) == 1 else None,
                request_id=request_ids.pop() if len(request_ids) == 1 else None,
            )
        )
    announce_many(session, changes)
