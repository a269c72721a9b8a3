"""Marketplace connections: the use cases behind the HQ endpoints (connect, change, resync)."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.core.settings import Settings
from zhongtai.core.unique import added, write_unique
from zhongtai.integrations.marketplace_changes import PUSHES, mark_all_stock
from zhongtai.integrations.marketplace_models import (
    MarketplaceConnection,
    MarketplaceConnectionStore,
    MarketplaceStockPush,
)
from zhongtai.integrations.sealed_secrets import SecretSealer, sealer_for
from zhongtai.integrations.secret_rotation import (
    DEFAULT_OVERLAP_SECONDS,
    RolledSecret,
    check_overlap,
    rotate_row_secret,
)
from zhongtai.integrations.targets import TargetGuard, TargetRefused
from zhongtai.inventory.allocation import check_channel
from zhongtai.stores.models import Location, LocationKind

NAME_PATTERN = r"^[a-z][a-z0-9_.-]{1,23}$"
_NAME = re.compile(NAME_PATTERN)
MIN_INTERVAL_MS = 50
MAX_INTERVAL_MS = 3_600_000


def marketplace_secrets(settings: Settings) -> SecretSealer:
    """The sealer of connections' signing secrets for this deployment's ZHONGTAI_SECRET_KEY
    (a key of its own, derived apart from the webhooks' one)."""
    return sealer_for(
        settings,
        purpose=b"zhongtai/marketplace/secret/v1",
        remedy="run with the key the secret was sealed under, or rotate the connection's "
        "secret (POST .../rotate-secret) and give the new one to the marketplace",
    )


@dataclass(frozen=True)
class ConnectionView:
    """A connection as HQ sees it (never its secret), with the stores it sells from."""

    connection: MarketplaceConnection
    store_ids: list[uuid.UUID] | None


def check_url(url: str, guard: TargetGuard) -> None:
    """422 naming ``endpoint_url`` unless stock pushes may go to ``url``: http(s), and, unless
    ``guard`` allows private targets, a host on public addresses only. An HQ key must not be
    able to point pushes at the cloud's metadata service or an admin console inside the network.
    """
    try:
        guard.check(url)
    except TargetRefused as refused:
        raise InvalidInput.field("endpoint_url", str(refused)) from None


def _check_interval(min_interval_ms: int) -> None:
    if not MIN_INTERVAL_MS <= min_interval_ms <= MAX_INTERVAL_MS:
        raise InvalidInput.field(
            "min_interval_ms", f"must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}"
        )


def _set_stores(
    session: Session, connection: MarketplaceConnection, store_ids: Sequence[uuid.UUID] | None
) -> None:
    """Sell from every store (None) or from these stores only (each must be a store)."""
    session.execute(
        delete(MarketplaceConnectionStore).where(
            MarketplaceConnectionStore.connection_id == connection.id
        )
    )
    connection.all_stores = store_ids is None
    if store_ids is None:
        return
    wanted = set(store_ids)
    found = set(
        session.scalars(
            select(Location.id).where(Location.id.in_(wanted), Location.kind == LocationKind.STORE)
        )
    )
    if missing := sorted(str(s) for s in wanted - found):
        raise InvalidInput.field("store_ids", f"not stores of the chain: {missing}")
    if wanted:
        session.execute(
            insert(MarketplaceConnectionStore),
            [{"connection_id": connection.id, "location_id": s} for s in sorted(wanted)],
        )
    _withdraw_other_stores(session, connection.id, wanted)


def _withdraw_other_stores(
    session: Session, connection_id: uuid.UUID, stores: set[uuid.UUID]
) -> None:
    """The marketplace was told of stock at stores the connection no longer sells from: mark
    those SKUs for one more push, which the sender makes a 0 (``DirtyStock.withdrawn``), or the
    marketplace would go on selling the last figures it got. SKUs it was last told 0 of need
    nothing; SKUs still waiting for a push go out as 0 anyway."""
    rows = PUSHES.c
    session.execute(
        update(PUSHES)
        .where(
            rows.connection_id == connection_id,
            rows.location_id.not_in(sorted(stores)),
            rows.version == rows.pushed_version,
            rows.pushed_quantity != 0,
        )
        .values(version=rows.version + 1, updated_at=utcnow())
    )


def _name_taken(session: Session, name: str) -> Conflict | None:
    if session.scalar(select(MarketplaceConnection.id).where(MarketplaceConnection.name == name)):
        return Conflict(f"A marketplace connection named {name!r} exists.", name=name)
    return None


def create_connection(
    session: Session,
    *,
    name: str,
    endpoint_url: str,
    guard: TargetGuard,
    sealer: SecretSealer,
    channel: str | None = None,
    store_ids: Sequence[uuid.UUID] | None = None,
    min_interval_ms: int = 1000,
    secret: str | None = None,
) -> tuple[ConnectionView, str]:
    """Connect a marketplace; returns it and its signing secret (shown to the caller once).

    ``channel`` is the channel allocation whose ATP it receives (default
    ``marketplace:<name>``). ``guard`` refuses URLs pushes may not go to (422 naming
    ``endpoint_url``). The secret is stored sealed by ``sealer``, so the caller sees it in
    clear this once only. Every SKU stocked at its stores is marked for a first push.
    """
    if not _NAME.match(name):
        raise InvalidInput.field("name", "lower-case letters, digits, '_', '.', '-' (2-24)")
    channel = channel or f"marketplace:{name}"
    check_channel(channel)
    _check_interval(min_interval_ms)
    check_url(endpoint_url, guard)  # last: it may ask DNS
    secret = secret or f"mksec_{secrets.token_urlsafe(32)}"
    connection_id = new_id()
    connection = write_unique(
        session,
        lambda: added(
            session,
            MarketplaceConnection(
                id=connection_id,
                name=name,
                channel=channel,
                endpoint_url=endpoint_url,
                secret_sealed=sealer.seal(connection_id, secret),
                all_stores=True,
                min_interval_ms=min_interval_ms,
                active=True,
            ),
        ),
        lambda: _name_taken(session, name),
    )
    _set_stores(session, connection, store_ids)
    session.flush()
    mark_all_stock(session, connection.id)
    return view_connection(session, connection.id), secret


def get_connection(session: Session, connection_id: uuid.UUID) -> MarketplaceConnection:
    connection = session.get(MarketplaceConnection, connection_id)
    if connection is None:
        raise NotFound(f"No marketplace connection {connection_id}.")
    return connection


def view_connection(session: Session, connection_id: uuid.UUID) -> ConnectionView:
    connection = get_connection(session, connection_id)
    stores = None
    if not connection.all_stores:
        stores = list(
            session.scalars(
                select(MarketplaceConnectionStore.location_id)
                .where(MarketplaceConnectionStore.connection_id == connection_id)
                .order_by(MarketplaceConnectionStore.location_id)
            )
        )
    return ConnectionView(connection, stores)


def list_connections(session: Session, page: PageParams) -> tuple[list[ConnectionView], str | None]:
    rows, cursor = paginate(
        session, select(MarketplaceConnection), [MarketplaceConnection.id], page
    )
    return [view_connection(session, row.id) for row in rows], cursor


@dataclass(frozen=True)
class ConnectionChange:
    """What HQ changes of a connection; ``None`` leaves a field as it is."""

    endpoint_url: str | None = None
    min_interval_ms: int | None = None
    active: bool | None = None
    #: Change the stores (``stores_given``): None then means every store.
    store_ids: Sequence[uuid.UUID] | None = None
    stores_given: bool = False


def change_connection(
    session: Session, connection_id: uuid.UUID, change: ConnectionChange, *, guard: TargetGuard
) -> ConnectionView:
    """Change a connection. Activating it again, or changing its stores, marks every SKU of its
    stores for a push: stock that changed meanwhile reaches the marketplace.

    A new URL must pass ``guard`` (422 naming ``endpoint_url``). Fields are checked before any
    is changed, so a refused change leaves the connection as it was.
    """
    connection = get_connection(session, connection_id)
    if change.min_interval_ms is not None:
        _check_interval(change.min_interval_ms)
    if change.endpoint_url is not None:
        check_url(change.endpoint_url, guard)
    resync = False
    if change.endpoint_url is not None:
        connection.endpoint_url = change.endpoint_url
    if change.min_interval_ms is not None:
        connection.min_interval_ms = change.min_interval_ms
    if change.active is not None:
        resync = change.active and not connection.active
        connection.active = change.active
    if change.stores_given:
        _set_stores(session, connection, change.store_ids)
        resync = True
    session.flush()
    if resync and connection.active:
        mark_all_stock(session, connection.id)
    return view_connection(session, connection_id)


def rotate_secret(
    session: Session,
    connection_id: uuid.UUID,
    *,
    sealer: SecretSealer,
    overlap_seconds: int = DEFAULT_OVERLAP_SECONDS,
) -> tuple[ConnectionView, RolledSecret]:
    """Give a connection a new signing secret; the caller sees it in clear this once.

    For ``overlap_seconds`` pushes are signed with the old secret too (the marketplace's side
    verifies the same header as a webhook receiver), so it can switch when it is ready. An old
    secret that does not open (ZHONGTAI_SECRET_KEY changed) is dropped, with no overlap: that
    is how a connection recovers from a lost key, keeping its name, stores and push state. The
    row is locked, so two rotations at once happen one after the other.
    """
    check_overlap(overlap_seconds)
    connection = session.get(MarketplaceConnection, connection_id, with_for_update=True)
    if connection is None:
        raise NotFound(f"No marketplace connection {connection_id}.")
    rolled = rotate_row_secret(
        session,
        connection,
        connection_id,
        sealer=sealer,
        prefix="mksec_",
        overlap_seconds=overlap_seconds,
        entity_type="marketplace_connection",
    )
    return view_connection(session, connection_id), rolled


def resync_connection(session: Session, connection_id: uuid.UUID) -> int:
    """Push every SKU of the connection's stores again (e.g. after its allocation changed)."""
    get_connection(session, connection_id)
    return mark_all_stock(session, connection_id)


def list_stock_pushes(
    session: Session, connection_id: uuid.UUID, page: PageParams, *, waiting_only: bool = False
) -> tuple[list[MarketplaceStockPush], str | None]:
    """Where each SKU's push stands (version seen, version acknowledged, next try, last error)."""
    get_connection(session, connection_id)
    stmt = select(MarketplaceStockPush).where(MarketplaceStockPush.connection_id == connection_id)
    if waiting_only:
        stmt = stmt.where(MarketplaceStockPush.version > MarketplaceStockPush.pushed_version)
    return paginate(
        session, stmt, [MarketplaceStockPush.location_id, MarketplaceStockPush.sku_id], page
    )
