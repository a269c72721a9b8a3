"""Holding the stock of many baskets in one transaction: claim references, lock, decide, write once.

:func:`hold_baskets` is what :func:`reservations.reserve` runs for one basket and what the
:class:`~zhongtai.inventory.reservation_desk.ReservationDesk` runs for a batch of concurrent
ones. Per batch it takes a fixed number of statements, whatever the number of baskets:

1. every new reference at an open location claimed in one ``INSERT ... ON CONFLICT DO
   NOTHING RETURNING``, in reference order (two batches sharing references wait on each
   other in the same order); the references not claimed are read back as retries, or
   refused for their location (on SQLite the locations are checked first, in one SELECT);
2. the balance rows, locked in one ``SELECT ... ORDER BY location_id, sku_id FOR UPDATE``
   (the order every use case locks in, so no deadlock), and the baskets judged in arrival
   order against the locked figures, each all-or-nothing; a single row skips the lock and is
   changed by one conditional UPDATE of the batch's total (the common case of a hot SKU);
3. one conditional ``UPDATE`` per changed row adding what the batch holds there; the
   condition is checked again by the database, so a wrong judgement fails rather than oversells;
4. the lines of the held baskets and the stock events (one per changed row) in one INSERT
   each; the references of baskets that could not be held are deleted again.

A service: it never commits; the caller's transaction holds everything or nothing.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Table, bindparam, cast, delete, literal, select, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from zhongtai.catalog.models import Sku
from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, DomainError, InvalidInput
from zhongtai.core.ids import new_id
from zhongtai.inventory import pg_batches
from zhongtai.inventory.allocation import allocation_for, check_channel
from zhongtai.inventory.checks import require_basket, require_text
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.ledger import BALANCES, Change, Figures, announce_many, change_balance
from zhongtai.inventory.models import Reservation, ReservationLine, ReservationStatus
from zhongtai.inventory.rules import (
    Allocation,
    Line,
    atp,
    channel_atp,
    lock_order,
    may_take,
    ttl_problem,
)
from zhongtai.stores.models import Location, LocationStatus

RESERVATIONS: Table = Reservation.__table__  # type: ignore[assignment]
LINES: Table = ReservationLine.__table__  # type: ignore[assignment]
LOCATIONS: Table = Location.__table__  # type: ignore[assignment]
REFERENCE_MAX = 128

Key = tuple[uuid.UUID, uuid.UUID]  # (location_id, sku_id): one balance row


@dataclass(frozen=True)
class Reserved:
    """A held basket. ``created`` is False for a retry of a reference held before."""

    created: bool
    _load: Callable[[], Reservation] = field(repr=False, compare=False)

    @functools.cached_property
    def reservation(self) -> Reservation:
        """The reservation as stored; built when first read (a batch answers many callers
        that may never read it, and building ORM objects is most of a batch's Python)."""
        return self._load()


@dataclass(frozen=True)
class HoldRequest:
    """One basket to hold, checked for shape (not yet against the database)."""

    reference: str
    location_id: uuid.UUID
    lines: tuple[Line, ...]
    expires_at: datetime
    channel: str | None = None
    actor: str | None = None
    request_id: str | None = None


def hold_request(
    reference: str,
    location_id: uuid.UUID,
    lines: Sequence[Line],
    ttl: timedelta,
    *,
    channel: str | None = None,
    now: datetime | None = None,
) -> HoldRequest:
    """The request as :func:`hold_baskets` takes it; 422 for a bad reference, basket, TTL or
    channel. Who asks (actor, request id) is taken from the caller's context here."""
    reference = require_text(reference, "reference", max_length=REFERENCE_MAX)
    require_basket(lines)
    problem = ttl_problem(int(ttl.total_seconds()))
    if problem:
        raise InvalidInput.field("ttl_seconds", problem)
    if channel is not None:
        check_channel(channel)
    return HoldRequest(
        reference=reference,
        location_id=location_id,
        lines=tuple(lines),
        expires_at=(now or utcnow()) + ttl,
        channel=channel,
        actor=context.actor.get(),
        request_id=context.request_id.get(),
    )


Outcome = Reserved | DomainError


@dataclass
class _Row:
    """A balance row as the batch sees it, and what the batch adds to it."""

    on_hand: int
    reserved: int
    safety_stock: int
    low_stock_level: int
    added: int = 0
    takers: set[int] = field(default_factory=set)

    @property
    def atp(self) -> int:
        return atp(self.on_hand, self.reserved, self.safety_stock)


def hold_baskets(session: Session, requests: Sequence[HoldRequest]) -> list[Outcome]:
    """Hold every basket that can be held, in arrival order; an outcome per request.

    A basket is held whole or not at all (``InsufficientStock`` naming the first short SKU),
    a reference already used answers its reservation (``created=False``) or 409 for another
    basket. A reference repeated inside the batch is judged after the first, as a retry.
    """
    outcomes: list[Outcome | None] = [None] * len(requests)
    pending = list(range(len(requests)))
    while pending:
        seen: set[str] = set()
        first: list[int] = []
        later: list[int] = []
        for i in pending:
            (later if requests[i].reference in seen else first).append(i)
            seen.add(requests[i].reference)
        round_ = _hold_round(session, [requests[i] for i in first])
        for i, outcome in zip(first, round_, strict=True):
            outcomes[i] = outcome
        pending = later
    return [o for o in outcomes if o is not None]


def _hold_round(session: Session, requests: list[HoldRequest]) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(requests)
    asked = list(range(len(requests)))
    if not _on_postgresql(session):  # PostgreSQL checks the location in the claim itself
        refused = _check_locations(session, requests, asked)
        outcomes = [refused.get(i) for i in asked]
        asked = [i for i in asked if i not in refused]
    now = utcnow()
    claimed = _claim_references(session, [requests[i] for i in asked], now)
    new = [i for i in asked if requests[i].reference in claimed]
    unclaimed = [i for i in asked if requests[i].reference not in claimed]
    found = _existing(session, [requests[i] for i in unclaimed])
    for i, outcome in zip(unclaimed, found, strict=True):
        outcomes[i] = outcome
    missing = [i for i in unclaimed if outcomes[i] is None]
    refused = _check_locations(session, requests, missing)
    if len(refused) != len(missing):  # neither claimed, nor there, nor refused: a bug
        raise RuntimeError("a reservation was neither claimed nor found")
    for i, error in refused.items():
        outcomes[i] = error
    allocations = _allocations(session, [requests[i] for i in new])
    held = _judge(session, requests, new, allocations, outcomes)
    short = [claimed[requests[i].reference] for i in new if i not in held]
    if short:
        session.execute(delete(RESERVATIONS).where(RESERVATIONS.c.id.in_(short)))
    reservations = _write_holds(session, requests, held, claimed, now)
    for i, build in reservations.items():
        outcomes[i] = Reserved(True, build)
    return [o for o in outcomes if o is not None]


def _already(reservation: Reservation) -> Callable[[], Reservation]:
    return lambda: reservation


def _check_locations(
    session: Session, requests: list[HoldRequest], indexes: list[int]
) -> dict[int, Outcome]:
    """422 for each of the requests at ``indexes`` whose location is unknown or closed."""
    if not indexes:
        return {}
    ids = {requests[i].location_id for i in indexes}
    found = session.execute(
        select(LOCATIONS.c.id, LOCATIONS.c.status).where(LOCATIONS.c.id.in_(ids))
    )
    status = {id_: state for id_, state in found}
    refused: dict[int, Outcome] = {}
    for i in indexes:
        location_id = requests[i].location_id
        if location_id not in status:
            refused[i] = InvalidInput.field("location_id", f"no location {location_id}")
        elif status[location_id] is not LocationStatus.ACTIVE:
            refused[i] = InvalidInput.field("location_id", f"location {location_id} is closed")
    return refused


def _allocations(
    session: Session, requests: list[HoldRequest]
) -> dict[tuple[str | None, uuid.UUID], Allocation]:
    found: dict[tuple[str | None, uuid.UUID], Allocation] = {}
    for r in requests:
        key = (r.channel, r.location_id)
        if key not in found:
            found[key] = (
                Allocation() if r.channel is None else allocation_for(session, *key)  # type: ignore[arg-type]
            )
    return found


def _claim_references(
    session: Session, requests: list[HoldRequest], now: datetime
) -> dict[str, uuid.UUID]:
    """Insert a reservation per request unless its reference exists: reference -> new id.

    Rows go in reference order, so two transactions claiming overlapping references wait
    on the unique index in the same order; a concurrent twin waits until the first ends.
    """
    if not requests:
        return {}
    rows = [
        {
            "id": new_id(),
            "reference": r.reference,
            "location_id": r.location_id,
            "expires_at": r.expires_at,
            "channel": r.channel,
            "actor": r.actor,
        }
        for r in sorted(requests, key=lambda r: r.reference)
    ]
    if _on_postgresql(session):
        return pg_batches.claim_references(session, rows, now)
    stmt = (
        sqlite.insert(RESERVATIONS)
        .on_conflict_do_nothing(index_elements=[RESERVATIONS.c.reference])
        .returning(RESERVATIONS.c.reference, RESERVATIONS.c.id)
    )
    extra = {"status": ReservationStatus.ACTIVE, "created_at": now, "updated_at": now}
    claimed = session.execute(stmt, [row | extra for row in rows])
    return {reference: id_ for reference, id_ in claimed}


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _existing(session: Session, requests: list[HoldRequest]) -> list[Outcome | None]:
    """Retries: the reservation of the same basket, or 409 when the reference holds another;
    None for a reference not taken (its location refused the claim)."""
    if not requests:
        return []
    found = {
        r.reference: r
        for r in session.scalars(
            select(Reservation).where(Reservation.reference.in_({x.reference for x in requests})),
            execution_options={"populate_existing": True},
        )
    }
    outcomes: list[Outcome | None] = []
    for r in requests:
        reservation = found.get(r.reference)
        if reservation is None:
            outcomes.append(None)
            continue
        same = reservation.location_id == r.location_id and {
            (x.sku_id, x.quantity) for x in reservation.lines
        } == {(x.sku_id, x.quantity) for x in r.lines}
        if same:
            outcomes.append(Reserved(False, _already(reservation)))
        else:
            outcomes.append(
                Conflict(
                    f"Reference {r.reference!r} already holds a different basket "
                    f"(reservation {reservation.id}); use a new reference.",
                    reservation_id=str(reservation.id),
                )
            )
    return outcomes


def _judge(
    session: Session,
    requests: list[HoldRequest],
    new: list[int],
    allocations: dict[tuple[str | None, uuid.UUID], Allocation],
    outcomes: list[Outcome | None],
) -> dict[int, list[Figures]]:
    """Hold what can be held, in arrival order: the held requests with the figures of their
    lines after the batch; an ``InsufficientStock`` (or 422) outcome for the others."""
    if not new:
        return {}
    keys = sorted({(requests[i].location_id, x.sku_id) for i in new for x in requests[i].lines})
    rules = {allocations[(requests[i].channel, requests[i].location_id)] for i in new}
    rows: dict[Key, _Row] | None = None
    if len(keys) == 1 and len(rules) == 1:
        rows = _hold_one_row(session, requests, new, keys[0], rules.pop())
    if rows is None:
        rows = _lock_rows(session, keys)
        _decide(requests, new, allocations, rows, outcomes)
        _apply(session, rows)
    _unknown_skus(session, requests, [i for i in new if outcomes[i] is not None], outcomes)
    held = [i for i in new if outcomes[i] is None]
    figures = {
        key: Figures(*key, row.on_hand, row.reserved, row.safety_stock, row.low_stock_level)
        for key, row in rows.items()
    }
    _announce(session, requests, rows, figures)
    return {
        i: [figures[(requests[i].location_id, x.sku_id)] for x in requests[i].lines] for i in held
    }


def _hold_one_row(
    session: Session, requests: list[HoldRequest], new: list[int], key: Key, rule: Allocation
) -> dict[Key, _Row] | None:
    """Every basket on one row under one allocation: one conditional UPDATE of their total.

    Sufficient: when the total fits the rule, every basket fits in turn (the share and the
    units kept back only grow stricter per unit). None when it does not fit: judge one by one.
    """
    total = sum(x.quantity for i in new for x in requests[i].lines)
    b = BALANCES.c
    available = b.on_hand - b.reserved - b.safety_stock
    condition = available >= total
    if rule.share_percent < 100:
        # 64-bit: grams of stock times a percentage overflow a 32-bit integer.
        condition &= cast(available, BigInteger) * rule.share_percent >= (
            cast(literal(total), BigInteger) * 100
        )
    if rule.keep_units:
        condition &= available - rule.keep_units >= total
    after = change_balance(session, *key, reserved=total, condition=condition)
    if after is None:
        return None
    row = _Row(after.on_hand, after.reserved, after.safety_stock, after.low_stock_level)
    row.added = total
    row.takers = set(new)
    return {key: row}


def _lock_rows(session: Session, keys: list[Key]) -> dict[Key, _Row]:
    if _on_postgresql(session):
        found = pg_batches.lock_balances(session, keys)
    else:  # SQLite: the writer's BEGIN IMMEDIATE already excludes every other writer
        b = BALANCES.c
        found = [
            (loc, sku, on_hand, reserved, safety, low)
            for loc, sku, on_hand, reserved, safety, low in session.execute(
                select(
                    b.location_id,
                    b.sku_id,
                    b.on_hand,
                    b.reserved,
                    b.safety_stock,
                    b.low_stock_level,
                ).where(tuple_(b.location_id, b.sku_id).in_(keys))
            )
        ]
    return {(loc, sku): _Row(a, b, c, d) for loc, sku, a, b, c, d in found}


def _decide(
    requests: list[HoldRequest],
    new: list[int],
    allocations: dict[tuple[str | None, uuid.UUID], Allocation],
    rows: dict[Key, _Row],
    outcomes: list[Outcome | None],
) -> None:
    for i in new:
        r = requests[i]
        rule = allocations[(r.channel, r.location_id)]
        for x in lock_order(r.lines):
            row = rows.get((r.location_id, x.sku_id))
            store_atp = 0 if row is None else row.atp
            if row is None or not may_take(store_atp, rule, x.quantity):
                outcomes[i] = InsufficientStock(
                    location_id=r.location_id,
                    sku_id=x.sku_id,
                    requested=x.quantity,
                    available=channel_atp(store_atp, rule),
                )
                break
        else:
            for x in r.lines:
                row = rows[(r.location_id, x.sku_id)]
                row.reserved += x.quantity
                row.added += x.quantity
                row.takers.add(i)


def _apply(session: Session, rows: dict[Key, _Row]) -> None:
    """Add what the batch holds to each locked row, the database checking it still fits."""
    changed = [(loc, sku, row.added) for (loc, sku), row in rows.items() if row.added]
    if not changed:
        return
    if _on_postgresql(session):
        done = pg_batches.add_reserved(session, changed, utcnow())
    else:
        b = BALANCES.c
        stmt = (
            BALANCES.update()
            .where(b.location_id == bindparam("l"), b.sku_id == bindparam("s"))
            .where(b.on_hand - b.reserved - b.safety_stock >= bindparam("q"))
            .values(reserved=b.reserved + bindparam("q"))
        )
        params = [{"l": loc, "s": sku, "q": q} for loc, sku, q in changed]
        done = session.execute(stmt, params).rowcount  # type: ignore[attr-defined]
    if done != len(changed):  # the rows are locked: a miss is a bug, never a race
        raise RuntimeError(f"held stock on {done} of {len(changed)} locked balance rows")


def _unknown_skus(
    session: Session,
    requests: list[HoldRequest],
    refused: list[int],
    outcomes: list[Outcome | None],
) -> None:
    """A refused basket naming a SKU that does not exist answers 422 for that line instead."""
    asked = {x.sku_id for i in refused for x in requests[i].lines}
    if not asked:
        return
    known = set(session.scalars(select(Sku.id).where(Sku.id.in_(asked))))
    for i in refused:
        for n, x in enumerate(requests[i].lines):
            if x.sku_id not in known:
                outcomes[i] = InvalidInput.field(f"lines.{n}.sku_id", f"no SKU {x.sku_id}")
                break


def _announce(
    session: Session,
    requests: list[HoldRequest],
    rows: dict[Key, _Row],
    figures: dict[Key, Figures],
) -> None:
    """One stock.changed per changed row (with low/out), on behalf of whoever took from it."""
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


def _write_holds(
    session: Session,
    requests: list[HoldRequest],
    held: dict[int, list[Figures]],
    claimed: dict[str, uuid.UUID],
    now: datetime,
) -> dict[int, Callable[[], Reservation]]:
    """Insert the lines of the held baskets; how to build each reservation as loaded."""
    if not held:
        return {}
    written = [
        (claimed[requests[i].reference], x.sku_id, x.quantity)
        for i in held
        for x in requests[i].lines
    ]
    if _on_postgresql(session):
        pg_batches.insert_lines(session, written)
    else:
        session.execute(
            LINES.insert(),
            [{"reservation_id": r, "sku_id": s, "quantity": q} for r, s, q in written],
        )
    return {
        i: functools.partial(_as_loaded, requests[i], claimed[requests[i].reference], now)
        for i in held
    }


def _as_loaded(request: HoldRequest, reservation_id: uuid.UUID, now: datetime) -> Reservation:
    """The reservation as it was written, without reading it back (a detached object)."""
    lines = [
        ReservationLine(reservation_id=reservation_id, sku_id=x.sku_id, quantity=x.quantity)
        for x in sorted(request.lines, key=lambda x: x.sku_id)
    ]
    reservation = Reservation(
        id=reservation_id,
        reference=request.reference,
        location_id=request.location_id,
        status=ReservationStatus.ACTIVE,
        expires_at=request.expires_at,
        channel=request.channel,
        actor=request.actor,
        created_at=now,
        updated_at=now,
        lines=lines,
    )
    # Detached as if loaded and then closed: reading it never goes back to the database.
    for line in lines:
        make_transient_to_detached(line)
    make_transient_to_detached(reservation)
    return reservation
