"""Every write of stock: one conditional statement per balance change, its ledger line, events.

The check and the change are one SQL statement (``UPDATE ... WHERE <condition> RETURNING``,
or an upsert for rows that may not exist yet), so no two transactions can both pass a check
that only one of them may pass. Callers lock balance rows in :func:`rules.lock_order`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Table, insert, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import EVENT_TYPES, OutboxEvent, record_event
from zhongtai.inventory import pg_batches
from zhongtai.inventory.events import (
    StockChanged,
    StockDiscrepancyDetected,
    StockLow,
    StockOut,
)
from zhongtai.inventory.models import MovementKind, StockBalance, StockDiscrepancy, StockMovement
from zhongtai.inventory.rules import Threshold, atp, crossed

BALANCES: Table = StockBalance.__table__  # type: ignore[assignment]
MOVEMENTS: Table = StockMovement.__table__  # type: ignore[assignment]
OUTBOX: Table = OutboxEvent.__table__  # type: ignore[assignment]
_FIGURES = (
    BALANCES.c.on_hand,
    BALANCES.c.reserved,
    BALANCES.c.safety_stock,
    BALANCES.c.low_stock_level,
)


@dataclass(frozen=True)
class Figures:
    """A balance row as it stands after a change."""

    location_id: uuid.UUID
    sku_id: uuid.UUID
    on_hand: int
    reserved: int
    safety_stock: int
    low_stock_level: int

    @property
    def atp(self) -> int:
        return atp(self.on_hand, self.reserved, self.safety_stock)


@dataclass(frozen=True)
class Posted:
    """A movement as written, with the balance after it."""

    movement_id: uuid.UUID
    kind: MovementKind
    quantity: int
    figures: Figures
    discrepancy_id: uuid.UUID | None = None


def _figures(location_id: uuid.UUID, sku_id: uuid.UUID, row: Any) -> Figures:
    return Figures(location_id, sku_id, row[0], row[1], row[2], row[3])


def _where(location_id: uuid.UUID, sku_id: uuid.UUID) -> list[ColumnElement[bool]]:
    return [BALANCES.c.location_id == location_id, BALANCES.c.sku_id == sku_id]


def change_balance(
    session: Session,
    location_id: uuid.UUID,
    sku_id: uuid.UUID,
    *,
    on_hand: int = 0,
    reserved: int = 0,
    in_transit: int = 0,
    condition: ColumnElement[bool] | None = None,
) -> Figures | None:
    """Add to on-hand, reserved and in-transit of an existing row if ``condition`` holds;
    None otherwise."""
    stmt = update(BALANCES).where(*_where(location_id, sku_id))
    if condition is not None:
        stmt = stmt.where(condition)
    values: dict[str, Any] = {}
    if on_hand:
        values["on_hand"] = BALANCES.c.on_hand + on_hand
    if reserved:
        values["reserved"] = BALANCES.c.reserved + reserved
    if in_transit:
        values["in_transit"] = BALANCES.c.in_transit + in_transit
    row = session.execute(stmt.values(**values).returning(*_FIGURES)).first()
    return None if row is None else _figures(location_id, sku_id, row)


def upsert_balance(
    session: Session, location_id: uuid.UUID, sku_id: uuid.UUID, *, on_hand: int = 0, **set_: int
) -> Figures:
    """Add ``on_hand`` to the row (made on first use) and set other columns; one statement."""
    insert_fn = conflict_insert(session)
    now = utcnow()
    stmt = insert_fn(BALANCES).values(
        location_id=location_id, sku_id=sku_id, on_hand=on_hand, updated_at=now, **set_
    )
    changes: dict[str, Any] = {"on_hand": BALANCES.c.on_hand + stmt.excluded.on_hand}
    changes |= {name: stmt.excluded[name] for name in set_}
    changes["updated_at"] = now
    stmt = stmt.on_conflict_do_update(
        index_elements=[BALANCES.c.location_id, BALANCES.c.sku_id], set_=changes
    )
    row = session.execute(stmt.returning(*_FIGURES)).one()
    return _figures(location_id, sku_id, row)


@dataclass(frozen=True)
class Change:
    """A change of one balance to announce: the figures after it and how ATP moved."""

    figures: Figures
    cause: str
    quantity: int
    atp_before: int
    actor: str | None = None
    request_id: str | None = None


def _payloads(change: Change) -> list[BaseModel]:
    """stock.changed, and stock.low / stock.out when ATP crossed a threshold."""
    figures = change.figures
    base = {
        "location_id": figures.location_id,
        "sku_id": figures.sku_id,
        "on_hand": figures.on_hand,
        "reserved": figures.reserved,
        "safety_stock": figures.safety_stock,
        "atp": figures.atp,
    }
    payloads: list[BaseModel] = [StockChanged(**base, cause=change.cause, quantity=change.quantity)]
    threshold = crossed(change.atp_before, figures.atp, figures.low_stock_level)
    if threshold is Threshold.OUT:
        payloads.append(StockOut(**base))
    elif threshold is Threshold.LOW:
        payloads.append(StockLow(**base, low_stock_level=figures.low_stock_level))
    return payloads


def announce(
    session: Session, figures: Figures, *, cause: str, quantity: int, atp_before: int
) -> None:
    """Record stock.changed, and stock.low / stock.out when ATP crossed a threshold."""
    for payload in _payloads(Change(figures, cause, quantity, atp_before)):
        # The aggregate is the SKU's stock at one store: (store_id, aggregate_id).
        record_event(
            session,
            payload,
            aggregate_type="stock",
            aggregate_id=str(figures.sku_id),
            store_id=figures.location_id,
        )


def announce_many(session: Session, changes: list[Change]) -> None:
    """Announce many balance changes as :func:`announce` does, in one INSERT of outbox rows.

    The hot path of reservations writes its events this way: one statement instead of an
    ORM object per event. Pending ORM events are flushed first, so ``seq`` keeps the order
    in which events were recorded.
    """
    if not changes:
        return
    session.flush()
    now = utcnow()
    rows = []
    for change in changes:
        for payload in _payloads(change):
            name = type(payload).__event_type__  # type: ignore[attr-defined]
            rows.append(
                {
                    "id": new_id(),
                    "type": name,
                    "version": EVENT_TYPES[name].version,
                    "aggregate_type": "stock",
                    "aggregate_id": str(change.figures.sku_id),
                    "store_id": change.figures.location_id,
                    "occurred_at": now,
                    "payload": payload.model_dump(mode="json"),
                    "request_id": change.request_id,
                    "actor": change.actor,
                }
            )
    if session.get_bind().dialect.name == "postgresql":
        pg_batches.insert_events(session, rows, now)
    else:
        session.execute(insert(OUTBOX), rows)


def write_movement(
    session: Session,
    figures: Figures,
    *,
    kind: MovementKind,
    quantity: int,
    reference_type: str | None = None,
    reference_id: str | None = None,
    lot: str | None = None,
    expires_on: date | None = None,
    reason: str | None = None,
    approver: str | None = None,
    reserved_delta: int = 0,
    flag_negative: bool = False,
) -> Posted:
    """Append the ledger line of a change already applied to ``figures``; announce it."""
    movement_id = new_id()
    now = utcnow()
    session.execute(
        insert(MOVEMENTS).values(
            id=movement_id,
            location_id=figures.location_id,
            sku_id=figures.sku_id,
            kind=kind,
            quantity=quantity,
            on_hand_after=figures.on_hand,
            reference_type=reference_type,
            reference_id=reference_id,
            lot=lot,
            expires_on=expires_on,
            reason=reason,
            approver=approver,
            actor=context.actor.get(),
            occurred_at=now,
        )
    )
    before = atp(
        figures.on_hand - quantity, figures.reserved - reserved_delta, figures.safety_stock
    )
    announce(session, figures, cause=kind.value, quantity=quantity, atp_before=before)
    discrepancy_id = None
    if flag_negative and figures.on_hand < 0:
        discrepancy_id = _flag_discrepancy(session, figures, movement_id)
    return Posted(movement_id, kind, quantity, figures, discrepancy_id)


def _flag_discrepancy(session: Session, figures: Figures, movement_id: uuid.UUID) -> uuid.UUID:
    discrepancy_id = new_id()
    session.execute(
        insert(StockDiscrepancy).values(
            id=discrepancy_id,
            location_id=figures.location_id,
            sku_id=figures.sku_id,
            movement_id=movement_id,
            on_hand_after=figures.on_hand,
            detected_at=utcnow(),
        )
    )
    record_event(
        session,
        StockDiscrepancyDetected(
            discrepancy_id=discrepancy_id,
            location_id=figures.location_id,
            sku_id=figures.sku_id,
            on_hand=figures.on_hand,
            movement_id=movement_id,
        ),
        aggregate_type="stock",
        aggregate_id=str(figures.sku_id),
        store_id=figures.location_id,
    )
    return discrepancy_id
