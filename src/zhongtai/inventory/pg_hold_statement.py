"""Holding a round of independent baskets on PostgreSQL in two statements and one round trip.

When no two baskets of a round take from the same balance row (the usual case: concurrent
checkouts of different SKUs, and every round of one basket), each basket's fate depends on its
own rows only, so the database can decide the whole round without the Python between the five
statements of the general path (:mod:`holds`). Both statements are sent together in pipeline
mode (the second between two ``SET LOCAL`` that give it its generic plan, see
``_GENERIC_PLAN``); the second does not need the first's answer:

1. ``_CLAIM_AND_LOCK``: a reservation per basket at an open location, in reference order, with
   the id made here, unless its reference exists (``ON CONFLICT DO NOTHING``, as
   :func:`hold_claims.claim_references`); then the balance rows of the claimed baskets, locked
   ``ORDER BY location_id, sku_id FOR UPDATE`` (the order every use case locks in; the lock
   reads the claims, so every claim is made before any row is locked, as on the general path).
2. ``_JUDGE_AND_TAKE``, for the baskets asked to be judged that the first claimed (their
   reservation id exists): whether every line fits its row under the basket's allocation (the
   condition of :func:`rules.may_take`), then for those that fit one conditional ``UPDATE`` of
   their rows (the database checks the condition again, so a wrong judgement fails rather than
   oversells), their lines, and the stock events of each changed row -- ``stock.changed``, and
   ``stock.low`` / ``stock.out`` when ATP crossed its threshold, with the payloads of
   :mod:`inventory.events` -- built by the database from the row's figures, as
   :func:`ledger.announce_many` writes them.

The rows are judged and changed by a statement of their own rather than by a CTE of the
first: an ``UPDATE`` in the statement that locked a row sees the row as of the statement's
snapshot and may skip a version a concurrent transaction committed meanwhile. The second
statement's snapshot is taken after the lock, and a locked row changes no more.

Reservation ids are UUIDv7 made in Python (:func:`zhongtai.core.ids.new_id`), event ids UUIDv7
made by the database the same way. What the statements do not decide -- a reference already
used, a closed location, a basket that does not fit -- goes back to the general path, which
answers it in detail.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from zhongtai.core.ids import new_id
from zhongtai.core.outbox import EVENT_TYPES
from zhongtai.inventory.hold_requests import HoldRequest
from zhongtai.inventory.rules import Allocation

AllocationKey = tuple[str | None, uuid.UUID]

# UUIDs travel as their 32 hex digits, which PostgreSQL reads as well as the hyphenated form.
# A UUIDv7 from the clock and gen_random_uuid(): the 48-bit millisecond time over the first six
# bytes, then the version nibble turned from 4 (0100) into 7 (0111); the variant bits stay.
_UUID7 = """CAST(encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
            placing substring(int8send(CAST(extract(epoch FROM clock_timestamp()) * 1000
                                            AS bigint)) FROM 3)
            FROM 1 FOR 6), 52, 1), 53, 1), 'hex') AS uuid)"""

_FITS = """k.on_hand - k.reserved - k.safety_stock >= x.quantity
       AND CAST(k.on_hand - k.reserved - k.safety_stock AS bigint) * b.share_percent
           >= CAST(x.quantity AS bigint) * 100
       AND k.on_hand - k.reserved - k.safety_stock - b.keep_units >= x.quantity"""

_ATP_AFTER = "GREATEST(0, t.on_hand - t.reserved - t.safety_stock)"
_ATP_BEFORE = "GREATEST(0, t.on_hand - t.reserved + t.quantity - t.safety_stock)"
_FIGURES = (
    """'location_id', t.location_id, 'sku_id', t.sku_id, 'on_hand', t.on_hand,
              'reserved', t.reserved, 'safety_stock', t.safety_stock, 'atp', """
    + _ATP_AFTER
)

# The f-strings below splice in the module's own constant fragments above, never input.
_CLAIM_AND_LOCK = """
    WITH basket AS MATERIALIZED (
        SELECT * FROM json_to_recordset(CAST(%(baskets)s AS json))
               AS b(n int, id uuid, reference text, location_id uuid, expires_at timestamptz,
                    channel text, actor text)
    ), line AS MATERIALIZED (
        SELECT * FROM json_to_recordset(CAST(%(lines)s AS json))
               AS x(n int, sku_id uuid, quantity int)
    ), claimed AS (
        INSERT INTO stock_reservations
               (id, reference, location_id, status, expires_at, channel, actor,
                created_at, updated_at)
        SELECT b.id, b.reference, b.location_id, 'active', b.expires_at, b.channel, b.actor,
               %(now)s, %(now)s
          FROM basket b
          JOIN locations l ON l.id = b.location_id AND l.status = 'active'
         ORDER BY b.reference
            ON CONFLICT (reference) DO NOTHING
        RETURNING id, reference
    ), locked AS MATERIALIZED (
        SELECT k.location_id, k.sku_id
          FROM stock_balances k
          JOIN (SELECT b.location_id, x.sku_id
                  FROM claimed c JOIN basket b USING (reference) JOIN line x USING (n)) w
            ON k.location_id = w.location_id AND k.sku_id = w.sku_id
         ORDER BY k.location_id, k.sku_id
           FOR UPDATE OF k
    )
    SELECT c.reference, c.id, (SELECT count(*) FROM locked) FROM claimed c
    """

_JUDGE_AND_TAKE = f"""
    WITH basket AS MATERIALIZED (
        SELECT b.*
          FROM json_to_recordset(CAST(%(baskets)s AS json))
               AS b(n int, id uuid, location_id uuid, share_percent int, keep_units int,
                    actor text, request_id text)
          JOIN stock_reservations r ON r.id = b.id
         WHERE r.id = ANY(CAST(%(ids)s AS uuid[]))
    ), line AS MATERIALIZED (
        SELECT * FROM json_to_recordset(CAST(%(lines)s AS json))
               AS x(n int, sku_id uuid, quantity int)
    ), stock AS MATERIALIZED (
        SELECT k.location_id, k.sku_id, k.on_hand, k.reserved, k.safety_stock
          FROM stock_balances k
         WHERE k.location_id = ANY(CAST(%(locations)s AS uuid[]))
           AND k.sku_id = ANY(CAST(%(skus)s AS uuid[]))
    ), fit AS MATERIALIZED (
        SELECT b.n
          FROM basket b
          JOIN line x USING (n)
          LEFT JOIN stock k ON k.location_id = b.location_id AND k.sku_id = x.sku_id
         GROUP BY b.n
        HAVING bool_and(k.sku_id IS NOT NULL AND {_FITS})
    ), held AS MATERIALIZED (
        SELECT b.id AS reservation_id, b.location_id, x.sku_id, x.quantity, b.actor,
               b.request_id
          FROM fit f JOIN basket b USING (n) JOIN line x USING (n)
    ), taken AS (
        UPDATE stock_balances t
           SET reserved = t.reserved + h.quantity, updated_at = %(now)s
          FROM held h
         WHERE t.location_id = ANY(CAST(%(locations)s AS uuid[]))
           AND t.sku_id = ANY(CAST(%(skus)s AS uuid[]))
           AND t.location_id = h.location_id AND t.sku_id = h.sku_id
           AND t.on_hand - t.reserved - t.safety_stock >= h.quantity
        RETURNING t.location_id, t.sku_id, t.on_hand, t.reserved, t.safety_stock,
                  t.low_stock_level, h.quantity, h.actor, h.request_id
    ), written AS (
        INSERT INTO stock_reservation_lines (reservation_id, sku_id, quantity)
        SELECT h.reservation_id, h.sku_id, h.quantity FROM held h
    ), announced AS (
        INSERT INTO outbox_events
               (id, type, version, aggregate_type, aggregate_id, store_id, occurred_at, payload,
                request_id, actor)
        SELECT {_UUID7}, e.type, e.version, 'stock', CAST(t.sku_id AS text), t.location_id,
               %(now)s, e.payload, t.request_id, t.actor
          FROM taken t
          CROSS JOIN LATERAL (
              SELECT 0 AS k, 'stock.changed' AS type,
                     CAST(%(changed_version)s AS int) AS version,
                     json_build_object({_FIGURES}, 'cause', 'reserved',
                                       'quantity', t.quantity) AS payload
              UNION ALL
              SELECT 1, 'stock.out', CAST(%(out_version)s AS int), json_build_object({_FIGURES})
               WHERE {_ATP_AFTER} <= 0 AND 0 < {_ATP_BEFORE}
              UNION ALL
              SELECT 1, 'stock.low', CAST(%(low_version)s AS int),
                     json_build_object({_FIGURES}, 'low_stock_level', t.low_stock_level)
               WHERE 0 < {_ATP_AFTER} AND {_ATP_AFTER} <= t.low_stock_level
                 AND t.low_stock_level < {_ATP_BEFORE}
          ) e
         ORDER BY t.location_id, t.sku_id, e.k
    )
    SELECT f.n, (SELECT count(*) FROM held), (SELECT count(*) FROM taken) FROM fit f
    """  # noqa: S608

# PostgreSQL would plan ``_JUDGE_AND_TAKE`` afresh on every run, even prepared: the generic plan
# is estimated dearer than a plan made for the run's arrays, and planning so large a statement
# costs as much as running it. Its plan is the same for every round (balance rows by primary
# key, the baskets in memory), so the transaction takes the generic plan for it alone.
_GENERIC_PLAN = "SET LOCAL plan_cache_mode = force_generic_plan"
_PLAN_AS_USUAL = "SET LOCAL plan_cache_mode = DEFAULT"


@dataclass(frozen=True)
class RoundResult:
    """What the statements did: reference -> reservation id of every basket claimed (its rows
    now locked), and of those held."""

    claimed: dict[str, uuid.UUID]
    held: dict[str, uuid.UUID]


def independent_first(requests: Sequence[HoldRequest]) -> tuple[list[int], list[int]]:
    """Split a round (references unique) into the baskets that share no balance row with any
    basket before them, and the others.

    The first may all be held at once, by this module; the others go after them, in arrival
    order, through the general path. So on every row the baskets are still judged in arrival
    order: a row's first basket may be in either group, every later one is in the second.
    """
    seen: set[tuple[int, int]] = set()
    first: list[int] = []
    later: list[int] = []
    for i, r in enumerate(requests):
        location = r.location_id.int
        rows = [(location, x.sku_id.int) for x in r.lines]
        (later if seen.intersection(rows) else first).append(i)
        seen.update(rows)
    return first, later


def hold_round(
    session: Session,
    requests: Sequence[HoldRequest],
    allocations: dict[AllocationKey, Allocation],
    now: datetime,
    *,
    judged: Sequence[int],
) -> RoundResult:
    """Claim every basket and lock the rows of those claimed; hold the baskets at ``judged``
    that fit, which must share no balance row (see :func:`independent_first`)."""
    session.flush()  # events recorded through the ORM keep their place before these
    baskets: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for n, r in enumerate(requests):
        baskets.append(
            {
                "n": n,
                "id": new_id().hex,
                "reference": r.reference,
                "location_id": r.location_id.hex,
                "expires_at": r.expires_at.isoformat(),
                "channel": r.channel,
                "actor": r.actor,
            }
        )
        lines.extend({"n": n, "sku_id": x.sku_id.hex, "quantity": x.quantity} for x in r.lines)
    judging: list[dict[str, Any]] = []
    for n in judged:
        r, basket = requests[n], baskets[n]
        rule = allocations[(r.channel, r.location_id)]
        judging.append(
            {
                "n": n,
                "id": basket["id"],
                "location_id": basket["location_id"],
                "share_percent": rule.share_percent,
                "keep_units": rule.keep_units,
                "actor": r.actor,
                "request_id": r.request_id,
            }
        )
    document = _document(lines)
    claims, _, fits, _ = _run_pipelined(
        session,
        (
            _CLAIM_AND_LOCK,
            {"baskets": _document(baskets), "lines": document, "now": now},
        ),
        (_GENERIC_PLAN, None),
        (
            _JUDGE_AND_TAKE,
            {
                "baskets": _document(judging),
                "ids": [basket["id"] for basket in judging],
                "lines": document,
                "locations": sorted({requests[n].location_id for n in judged}),
                "skus": sorted({x.sku_id for n in judged for x in requests[n].lines}),
                "now": now,
                "changed_version": EVENT_TYPES["stock.changed"].version,
                "low_version": EVENT_TYPES["stock.low"].version,
                "out_version": EVENT_TYPES["stock.out"].version,
            },
        ),
        (_PLAN_AS_USUAL, None),
    )
    claimed = {reference: id_ for reference, id_, _ in claims}
    if fits:
        _, rows, taken = fits[0]
        if taken != rows:  # the rows are locked and judged: a miss is a bug, not a race
            raise RuntimeError(f"held stock on {taken} of {rows} locked balance rows")
    held = {requests[n].reference: claimed[requests[n].reference] for n, _, _ in fits}
    return RoundResult(claimed=claimed, held=held)


def _run_pipelined(
    session: Session, *statements: tuple[str, dict[str, Any] | None]
) -> list[list[tuple[Any, ...]]]:
    """Run these statements on the session's connection, in its transaction, in one round
    trip: sent together in pipeline mode, their rows read once all have run (none for a
    statement that returns none).

    As driver SQL: the statements are constant texts with nothing for SQLAlchemy to compile;
    psycopg prepares them after a few runs. SQLAlchemy's ``before_cursor_execute`` listeners
    (statement counts, logging) are told of each. A failure of any of them raises here and
    leaves the transaction failed, as a single statement's failure would."""
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    cursors = []
    with driver.pipeline():
        for sql, params in statements:
            cursor = driver.cursor()
            connection.dispatch.before_cursor_execute(connection, cursor, sql, params, None, False)
            cursor.execute(sql, params)
            cursors.append(cursor)
    rows = []
    for cursor in cursors:
        with cursor:
            rows.append([tuple(row) for row in cursor.fetchall()] if cursor.description else [])
    return rows


def _document(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"))
