"""The stock-push queue: pick due SKUs, read what is sellable now, record each push's outcome."""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Sku
from zhongtai.core.clock import utcnow
from zhongtai.integrations.marketplace_changes import PUSHES, covers
from zhongtai.integrations.marketplace_models import MarketplaceConnection
from zhongtai.integrations.marketplace_rules import DirtyStock, PushBatch, PushedItem
from zhongtai.integrations.rules import backoff_seconds
from zhongtai.integrations.secret_rotation import SealedSigningSecrets
from zhongtai.inventory.allocation import channel_atp_at
from zhongtai.stores.models import Location


@dataclass(frozen=True)
class Destination:
    """Where and how one connection's pushes go."""

    connection_id: uuid.UUID
    name: str
    channel: str
    endpoint_url: str
    #: The signing secrets as stored: the sender opens them just before signing.
    secrets: SealedSigningSecrets
    min_interval_ms: int


@dataclass(frozen=True)
class StockPush:
    """One request ready to send: a store's SKUs with the quantities read just now."""

    batch: PushBatch
    destination: Destination
    store_code: str
    items: tuple[PushedItem, ...]


def due_stock(
    session: Session,
    *,
    busy: Collection[tuple[uuid.UUID, uuid.UUID]],
    full_connections: Collection[uuid.UUID],
    limit: int,
    now: datetime | None = None,
) -> tuple[list[DirtyStock], dict[uuid.UUID, Destination]]:
    """Dirty SKUs whose time has come, oldest due first, of active connections with room, and
    skipping (connection, store) pairs with a push in flight; plus those connections."""
    now = now or utcnow()
    stmt = (
        select(
            PUSHES.c.connection_id,
            PUSHES.c.location_id,
            PUSHES.c.sku_id,
            PUSHES.c.version,
            PUSHES.c.failures,
            MarketplaceConnection.name,
            MarketplaceConnection.channel,
            MarketplaceConnection.endpoint_url,
            MarketplaceConnection.secret_sealed,
            MarketplaceConnection.previous_secret_sealed,
            MarketplaceConnection.previous_secret_expires_at,
            MarketplaceConnection.min_interval_ms,
            covers(PUSHES.c.location_id).label("covered"),
        )
        .join(MarketplaceConnection, MarketplaceConnection.id == PUSHES.c.connection_id)
        .where(
            PUSHES.c.version > PUSHES.c.pushed_version,
            PUSHES.c.due_at <= now,
            MarketplaceConnection.active.is_(True),
        )
        .order_by(PUSHES.c.due_at)
        .limit(limit)
    )
    if full_connections:
        stmt = stmt.where(PUSHES.c.connection_id.not_in(list(full_connections)))
    if busy:
        stmt = stmt.where(tuple_(PUSHES.c.connection_id, PUSHES.c.location_id).not_in(list(busy)))
    dirty: list[DirtyStock] = []
    destinations: dict[uuid.UUID, Destination] = {}
    for row in session.execute(stmt):
        dirty.append(DirtyStock(row[0], row[1], row[2], row[3], row[4], withdrawn=not row.covered))
        if row[0] not in destinations:
            name, channel, endpoint_url, sealed, previous, previous_expires_at, interval = row[5:12]
            destinations[row[0]] = Destination(
                row[0],
                name,
                channel,
                endpoint_url,
                SealedSigningSecrets(sealed, previous, previous_expires_at),
                interval,
            )
    return dirty, destinations


def prepare_pushes(
    session: Session, batches: Sequence[PushBatch], destinations: dict[uuid.UUID, Destination]
) -> list[StockPush]:
    """Read each batch's sellable quantities now: the channel ATP of the connection's channel,
    and 0 at a store the connection no longer sells from.

    Called after the versions were read, so each quantity already includes every change
    those versions count (a later change bumps the version and is pushed again).
    """
    if not batches:
        return []
    stores = {b.location_id for b in batches}
    skus = {item.sku_id for b in batches for item in b.items}
    store_codes: dict[uuid.UUID, str] = {
        id_: code
        for id_, code in session.execute(
            select(Location.id, Location.code).where(Location.id.in_(stores))
        )
    }
    sku_codes: dict[uuid.UUID, str] = {
        id_: code for id_, code in session.execute(select(Sku.id, Sku.code).where(Sku.id.in_(skus)))
    }
    pushes = []
    for batch in batches:
        destination = destinations[batch.connection_id]
        sellable = channel_atp_at(
            session,
            destination.channel,
            [batch.location_id],
            [item.sku_id for item in batch.items],
        )
        items = tuple(
            PushedItem(
                sku_codes[item.sku_id],
                0 if item.withdrawn else sellable.get((batch.location_id, item.sku_id), 0),
                item.version,
            )
            for item in batch.items
        )
        pushes.append(StockPush(batch, destination, store_codes[batch.location_id], items))
    return pushes


def record_pushed(session: Session, push: StockPush, *, sent_at: datetime) -> None:
    """The marketplace took the push: its versions are acknowledged, and the SKUs rest for the
    connection's interval (counted from the send).

    The update is conditional on a lower acknowledged version, so an outcome recorded late
    never takes a row back; a SKU that changed meanwhile keeps ``version > pushed_version``
    and goes out again once the interval has run.
    """
    rest_until = sent_at + timedelta(milliseconds=push.destination.min_interval_ms)
    stmt = (
        update(PUSHES)
        .where(
            PUSHES.c.connection_id == bindparam("b_connection"),
            PUSHES.c.location_id == bindparam("b_location"),
            PUSHES.c.sku_id == bindparam("b_sku"),
            PUSHES.c.pushed_version < bindparam("b_version"),
        )
        .values(
            pushed_version=bindparam("b_version"),
            pushed_quantity=bindparam("b_quantity"),
            pushed_at=sent_at,
            due_at=rest_until,
            failures=0,
            last_error=None,
            updated_at=utcnow(),
        )
    )
    params = [
        {
            "b_connection": push.batch.connection_id,
            "b_location": push.batch.location_id,
            "b_sku": dirty.sku_id,
            "b_version": dirty.version,
            "b_quantity": item.quantity,
        }
        for dirty, item in zip(push.batch.items, push.items, strict=True)
    ]
    session.connection().execute(stmt, params)


def record_failed(
    session: Session,
    push: StockPush,
    *,
    error: str,
    backoff_base: float,
    backoff_cap: float,
    now: datetime | None = None,
) -> timedelta:
    """Count the failure and wait before the next try; stock is retried until it gets through
    (the retry reads the quantities again, so the marketplace gets the newest). Returns the wait.
    """
    now = now or utcnow()
    wait = timedelta(
        seconds=backoff_seconds(
            push.batch.failures + 1,
            base=backoff_base,
            cap=backoff_cap,
            jitter=random.random(),  # noqa: S311 (spreading retries, not secrecy)
        )
    )
    session.execute(
        update(PUSHES)
        .where(
            PUSHES.c.connection_id == push.batch.connection_id,
            PUSHES.c.location_id == push.batch.location_id,
            PUSHES.c.sku_id.in_([item.sku_id for item in push.batch.items]),
        )
        .values(
            failures=PUSHES.c.failures + 1,
            due_at=now + wait,
            last_error=error[:2000],
            updated_at=now,
        )
    )
    return wait
