"""What the tests of a data migration share: a database of the engine under test at an earlier
revision, and the integration tables as the revisions before their migrations kept them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from tests import pg
from tests.conftest import BACKEND
from zhongtai.core import migrate
from zhongtai.core.db import UTCDateTime


@contextmanager
def database_at(revision: str, tmp_path: Path, name: str) -> Iterator[str]:
    """A database of its own (PostgreSQL, dropped afterwards, or a SQLite file under
    ``tmp_path``) migrated up to ``revision``: its URL."""
    if BACKEND == "postgresql":
        with pg.temporary_database(f"zt_{name}") as url:
            migrate.upgrade(url, revision)
            yield url
    else:
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
        migrate.upgrade(url, revision)
        yield url


def webhook_subscriptions(secret: sa.ColumnClause[object]) -> sa.TableClause:
    """``webhook_subscriptions`` before secret rotation, with the secret kept in ``secret``
    (``secret`` in clear before 0012, ``secret_sealed`` from it)."""
    return sa.table(
        "webhook_subscriptions",
        sa.column("id", sa.Uuid()),
        sa.column("url", sa.String()),
        sa.column("description", sa.String()),
        sa.column("event_types", sa.JSON()),
        sa.column("store_ids", sa.JSON()),
        secret,
        sa.column("active", sa.Boolean()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )


def marketplace_connections(secret: sa.ColumnClause[object]) -> sa.TableClause:
    """``marketplace_connections`` before secret rotation, with the secret kept in ``secret``
    (``secret`` in clear before 0015, ``secret_sealed`` from it)."""
    return sa.table(
        "marketplace_connections",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("channel", sa.String()),
        sa.column("endpoint_url", sa.String()),
        secret,
        sa.column("all_stores", sa.Boolean()),
        sa.column("min_interval_ms", sa.Integer()),
        sa.column("active", sa.Boolean()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
