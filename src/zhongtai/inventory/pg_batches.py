"""The batch statements of holding stock on PostgreSQL: many rows per statement, sent as JSON.

Each statement has one constant text whatever the batch size: its rows travel as one JSON
document that ``json_to_recordset`` turns back into typed rows. So a statement is parsed and
planned once and then runs prepared, a batch of 64 reservations costs the same round trips
as one, and the driver adapts one string instead of escaping every element of many arrays.
SQLite takes the portable Core forms in :mod:`hold_claims`, :mod:`hold_judging` and
:mod:`hold_records` (it has one writer at a time anyway).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_CLAIM = text(
    """
    INSERT INTO stock_reservations
           (id, reference, location_id, status, expires_at, channel, actor, created_at, updated_at)
    SELECT r.id, r.reference, r.location_id, 'active', r.expires_at, r.channel, r.actor, :now, :now
      FROM json_to_recordset(CAST(:rows AS json))
           AS r(id uuid, reference text, location_id uuid, expires_at timestamptz, channel text,
                actor text)
      JOIN locations l ON l.id = r.location_id AND l.status = 'active'
     ORDER BY r.reference
        ON CONFLICT (reference) DO NOTHING
    RETURNING reference, id
    """
)

_LOCK = text(
    """
    SELECT b.location_id, b.sku_id, b.on_hand, b.reserved, b.safety_stock, b.low_stock_level
      FROM stock_balances b
      JOIN json_to_recordset(CAST(:rows AS json)) AS k(location_id uuid, sku_id uuid)
        ON b.location_id = k.location_id AND b.sku_id = k.sku_id
     WHERE b.sku_id = ANY(CAST(:skus AS uuid[]))
     ORDER BY b.location_id, b.sku_id
       FOR UPDATE OF b
    """
)

_ADD_RESERVED = text(
    """
    UPDATE stock_balances b
       SET reserved = b.reserved + k.quantity, updated_at = :now
      FROM json_to_recordset(CAST(:rows AS json))
           AS k(location_id uuid, sku_id uuid, quantity int)
     WHERE b.location_id = k.location_id AND b.sku_id = k.sku_id
       AND b.sku_id = ANY(CAST(:skus AS uuid[]))
       AND b.on_hand - b.reserved - b.safety_stock >= k.quantity
    """
)

_LINES = text(
    """
    INSERT INTO stock_reservation_lines (reservation_id, sku_id, quantity)
    SELECT * FROM json_to_recordset(CAST(:rows AS json))
                  AS x(reservation_id uuid, sku_id uuid, quantity int)
    """
)

_EVENTS = text(
    """
    INSERT INTO outbox_events
           (id, type, version, aggregate_type, aggregate_id, store_id, occurred_at, payload,
            request_id, actor)
    SELECT e.id, e.type, e.version, e.aggregate_type, e.aggregate_id, e.store_id, :now,
           e.payload, e.request_id, e.actor
      FROM json_to_recordset(CAST(:rows AS json))
           AS e(id uuid, type text, version int, aggregate_type text, aggregate_id text,
                store_id uuid, payload json, request_id text, actor text, n bigint)
     ORDER BY e.n
    """
)


def _document(rows: Sequence[dict[str, Any]]) -> str:
    # UUIDs and datetimes as their ISO text, which PostgreSQL reads back exactly.
    return json.dumps(rows, default=str, separators=(",", ":"))


def _skus(rows: Sequence[tuple[Any, ...]]) -> list[str]:
    """The SKU ids of (location, SKU, ...) rows, as an array the balance index can be searched
    with: the planner takes a JSON document for 100 rows and, joined to it alone, would rather
    scan the whole balance table than look each row up."""
    return sorted({str(row[1]) for row in rows})


def claim_references(
    session: Session, rows: Sequence[dict[str, Any]], now: datetime
) -> dict[str, uuid.UUID]:
    """Insert reservations (dicts of id, reference, location_id, expires_at, channel, actor)
    in reference order, unless their reference exists or their location is not open:
    reference -> id of the new ones."""
    found = session.execute(_CLAIM, {"rows": _document(rows), "now": now})
    return {reference: id_ for reference, id_ in found}


def lock_balances(
    session: Session, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> list[tuple[uuid.UUID, uuid.UUID, int, int, int, int]]:
    """Lock the balance rows of (location, SKU) keys in key order; their figures."""
    rows = [{"location_id": loc, "sku_id": sku} for loc, sku in keys]
    found = session.execute(_LOCK, {"rows": _document(rows), "skus": _skus(keys)})
    return [(loc, sku, a, b, c, d) for loc, sku, a, b, c, d in found]


def add_reserved(
    session: Session, changes: Sequence[tuple[uuid.UUID, uuid.UUID, int]], now: datetime
) -> int:
    """Add each quantity to its row's reserved where it still fits: how many rows changed."""
    rows = [{"location_id": loc, "sku_id": sku, "quantity": q} for loc, sku, q in changes]
    params = {"rows": _document(rows), "now": now, "skus": _skus(changes)}
    result = session.execute(_ADD_RESERVED, params)
    return int(result.rowcount)  # type: ignore[attr-defined]


def insert_lines(session: Session, lines: Sequence[tuple[uuid.UUID, uuid.UUID, int]]) -> None:
    rows = [{"reservation_id": r, "sku_id": s, "quantity": q} for r, s, q in lines]
    session.execute(_LINES, {"rows": _document(rows)})


def insert_events(session: Session, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Outbox rows (dicts of the outbox columns but ``seq`` and ``occurred_at``), in order."""
    numbered = [row | {"n": n} for n, row in enumerate(rows)]  # seq follows the list
    session.execute(_EVENTS, {"rows": _document(numbered), "now": now})
