"""Marks stock as dirty for marketplace connections: on every stock change, and on a full resync.

Marking is one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE SET version = version + 1`` for
every connection at once: concurrent changes each add one to the version in the database, none
is lost to a read-then-write race. The quantity itself is not stored here: the sender reads the
current channel ATP when it pushes, so a push is never older than the version it reports.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, exists, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.integrations.handlers import PublishedEvent, on_events
from zhongtai.integrations.marketplace_models import (
    MarketplaceConnection,
    MarketplaceConnectionStore,
    MarketplaceStockPush,
)
from zhongtai.inventory import events as _inventory_events  # noqa: F401  (declares the events)
from zhongtai.inventory.ledger import BALANCES
from zhongtai.inventory.models import ChannelAllocation
from zhongtai.stores.models import Location, LocationKind

PUSHES: Table = MarketplaceStockPush.__table__  # type: ignore[assignment]
CONSUMER = "integrations.marketplace.stock_push"
ALLOCATION_CONSUMER = "integrations.marketplace.allocation_push"
_COLUMNS = ("connection_id", "location_id", "sku_id", "version", "pushed_version", "due_at")


def covers(location_id: Any) -> ColumnElement[bool]:
    """The connection sells from this location: listed, or 'all stores' and it is a store."""
    listed = exists().where(
        MarketplaceConnectionStore.connection_id == MarketplaceConnection.id,
        MarketplaceConnectionStore.location_id == location_id,
    )
    a_store = exists().where(Location.id == location_id, Location.kind == LocationKind.STORE)
    return or_(listed, and_(MarketplaceConnection.all_stores.is_(True), a_store))


def _upsert(session: Session, rows: Select[Any], add: int = 1) -> int:
    """Insert the rows as dirty (version ``add``), or add ``add`` to the version of rows
    already there."""
    insert = conflict_insert(session)
    stmt = insert(PUSHES).from_select(list(_COLUMNS), rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[PUSHES.c.connection_id, PUSHES.c.location_id, PUSHES.c.sku_id],
        # due_at stays: a row pushed a moment ago waits out its interval, a failing one its
        # backoff; a clean row's due_at is in the past, so it goes out at the next pass.
        set_={"version": PUSHES.c.version + add, "updated_at": utcnow()},
    )
    # An INSERT's rowcount is kept only on request (SQLAlchemy 2.1 with psycopg answers -1).
    result = session.execute(stmt, execution_options={"preserve_rowcount": True})
    return int(result.rowcount)  # type: ignore[attr-defined]


def mark_stock_changed(session: Session, location_id: uuid.UUID, sku_id: uuid.UUID) -> int:
    """One SKU changed at one location: dirty for every active connection selling from there.

    Returns how many connections will push it.
    """
    now = utcnow()
    rows = select(
        MarketplaceConnection.id,
        literal(location_id, PUSHES.c.location_id.type),
        literal(sku_id, PUSHES.c.sku_id.type),
        literal(1, PUSHES.c.version.type),
        literal(0, PUSHES.c.pushed_version.type),
        literal(now, PUSHES.c.due_at.type),
    ).where(MarketplaceConnection.active.is_(True), covers(location_id))
    return _upsert(session, rows)


def mark_stocks_changed(session: Session, changes: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> int:
    """Many (location, SKU) changes at once: each dirty for every active connection selling
    from its location, its version raised by the number of times it appears (every change
    counts, as with :func:`mark_stock_changed`). One statement per distinct count (normally
    one); returns how many rows were marked."""
    times = Counter(changes)
    by_count: dict[int, list[tuple[uuid.UUID, uuid.UUID]]] = {}
    for pair, n in sorted(times.items()):
        by_count.setdefault(n, []).append(pair)
    now = utcnow()
    marked = 0
    for n, pairs in by_count.items():
        rows = (
            select(
                MarketplaceConnection.id,
                BALANCES.c.location_id,
                BALANCES.c.sku_id,
                literal(n, PUSHES.c.version.type),
                literal(0, PUSHES.c.pushed_version.type),
                literal(now, PUSHES.c.due_at.type),
            )
            .select_from(MarketplaceConnection)
            .join(BALANCES, covers(BALANCES.c.location_id))
            .where(
                MarketplaceConnection.active.is_(True),
                tuple_(BALANCES.c.location_id, BALANCES.c.sku_id).in_(pairs),
            )
        )
        marked += _upsert(session, rows, add=n)
    return marked


def mark_all_stock(session: Session, connection_id: uuid.UUID) -> int:
    """Every SKU stocked at the connection's stores: dirty (a new connection, or a resync after
    its channel allocation changed). Returns how many SKUs will be pushed."""
    now = utcnow()
    rows = (
        select(
            MarketplaceConnection.id,
            BALANCES.c.location_id,
            BALANCES.c.sku_id,
            literal(1, PUSHES.c.version.type),
            literal(0, PUSHES.c.pushed_version.type),
            literal(now, PUSHES.c.due_at.type),
        )
        .select_from(MarketplaceConnection)
        .join(BALANCES, covers(BALANCES.c.location_id))
        .where(MarketplaceConnection.id == connection_id)
    )
    return _upsert(session, rows)


def mark_channel_stock(session: Session, channel: str, location_id: uuid.UUID | None) -> int:
    """The channel's allocation at a location changed (``None``: its chain-wide rule, which
    governs the stores without a rule of their own): every SKU stocked there is dirty for each
    active connection selling that channel from there. Returns how many rows were marked."""
    now = utcnow()
    where = [MarketplaceConnection.active.is_(True), MarketplaceConnection.channel == channel]
    if location_id is not None:
        where.append(BALANCES.c.location_id == location_id)
    else:
        where.append(
            ~exists().where(
                ChannelAllocation.channel == channel,
                ChannelAllocation.location_id == BALANCES.c.location_id,
            )
        )
    rows = (
        select(
            MarketplaceConnection.id,
            BALANCES.c.location_id,
            BALANCES.c.sku_id,
            literal(1, PUSHES.c.version.type),
            literal(0, PUSHES.c.pushed_version.type),
            literal(now, PUSHES.c.due_at.type),
        )
        .select_from(MarketplaceConnection)
        .join(BALANCES, covers(BALANCES.c.location_id))
        .where(*where)
    )
    return _upsert(session, rows)


def any_connection_active(session: Session) -> bool:
    """Whether some marketplace connection is active: without one, a stock change marks nothing.

    The relay asks this once per pass, and passes stock changes by while it is False: creating
    a connection or switching one on marks all its stock dirty in the same transaction
    (:func:`mark_all_stock`), and the sender reads the ATP when it pushes, so a change passed
    by is pushed all the same.
    """
    return bool(session.scalar(select(exists().where(MarketplaceConnection.active.is_(True)))))


@on_events("stock.changed", consumer=CONSUMER, only_if=any_connection_active)
def on_stock_changed(events: list[PublishedEvent], session: Session) -> None:
    """Runs once per stock change (the relay's handled-event claims), in the claims'
    transaction; the relay hands over a pass's changes together."""
    mark_stocks_changed(
        session,
        [
            (uuid.UUID(str(e.payload["location_id"])), uuid.UUID(str(e.payload["sku_id"])))
            for e in events
        ],
    )


@on_events("allocation.changed", consumer=ALLOCATION_CONSUMER, only_if=any_connection_active)
def on_allocation_changed(events: list[PublishedEvent], session: Session) -> None:
    """What a channel may sell changed: its connections push the stores the rule governs, on
    the same queue as stock changes (the sender reads the channel ATP under the rule of then)."""
    for event in events:
        location = event.payload.get("location_id")
        mark_channel_stock(
            session, str(event.payload["channel"]), uuid.UUID(str(location)) if location else None
        )
