"""The stock audit: balances equal their ledger, and every hold and transfer is accounted for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from zhongtai.inventory.ledger import BALANCES, MOVEMENTS
from zhongtai.inventory.models import ReservationStatus, TransferStatus
from zhongtai.inventory.reservations import LINES, RESERVATIONS
from zhongtai.inventory.transfers import TRANSFER_LINES, TRANSFERS


@dataclass(frozen=True)
class Difference:
    """A (location, SKU) whose ``field`` in the balance row is not what the records add up to."""

    location_id: uuid.UUID
    sku_id: uuid.UUID
    field: str
    balance: int
    expected: int


def _compare(session: Session, column: str, totals: Select[Any]) -> list[Difference]:
    """Balance column against ``totals`` (location_id, sku_id, total), both ways round."""
    t = totals.subquery()
    keys = (t.c.location_id == BALANCES.c.location_id) & (t.c.sku_id == BALANCES.c.sku_id)
    stated = BALANCES.c[column]
    expected = func.coalesce(t.c.total, 0)
    with_row = (
        select(BALANCES.c.location_id, BALANCES.c.sku_id, stated, expected)
        .select_from(BALANCES.outerjoin(t, keys))
        .where(stated != expected)
    )
    without_row = (
        select(t.c.location_id, t.c.sku_id, literal(0), t.c.total)
        .select_from(t.outerjoin(BALANCES, keys))
        .where(BALANCES.c.sku_id.is_(None), t.c.total != 0)
    )
    rows = session.execute(union_all(with_row, without_row)).all()
    return [Difference(loc, sku, column, int(b), int(e)) for loc, sku, b, e in rows]


def verify_stock(session: Session) -> list[Difference]:
    """Every difference of balances from the ledger, active holds and shipped transfers
    ([] is healthy).

    Each comparison is one statement, so it reads one consistent snapshot even while stock
    keeps moving.
    """
    ledger = select(
        MOVEMENTS.c.location_id,
        MOVEMENTS.c.sku_id,
        func.sum(MOVEMENTS.c.quantity).label("total"),
    ).group_by(MOVEMENTS.c.location_id, MOVEMENTS.c.sku_id)
    holds = (
        select(
            RESERVATIONS.c.location_id,
            LINES.c.sku_id,
            func.sum(LINES.c.quantity).label("total"),
        )
        .join(LINES, LINES.c.reservation_id == RESERVATIONS.c.id)
        .where(RESERVATIONS.c.status == ReservationStatus.ACTIVE)
        .group_by(RESERVATIONS.c.location_id, LINES.c.sku_id)
    )
    travelling = (
        select(
            TRANSFERS.c.to_location_id.label("location_id"),
            TRANSFER_LINES.c.sku_id,
            func.sum(TRANSFER_LINES.c.quantity).label("total"),
        )
        .join(TRANSFER_LINES, TRANSFER_LINES.c.transfer_id == TRANSFERS.c.id)
        .where(TRANSFERS.c.status == TransferStatus.SHIPPED)
        .group_by(TRANSFERS.c.to_location_id, TRANSFER_LINES.c.sku_id)
    )
    return (
        _compare(session, "on_hand", ledger)
        + _compare(session, "reserved", holds)
        + _compare(session, "in_transit", travelling)
    )
