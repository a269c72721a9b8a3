"""Upgrading adds room for a rotated secret to existing subscriptions and connections without
touching their secrets, and downgrading drops it, keeping the newest secret, on the engine under
test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.migrating import database_at, marketplace_connections, webhook_subscriptions
from zhongtai.core import migrate
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database, create_db_engine
from zhongtai.core.settings import get_settings
from zhongtai.integrations import marketplace, webhooks

BEFORE = "0015_marketplace_secrets_sealed"
ROTATION = "0016_secret_rotation"
ADDED = {"previous_secret_sealed", "previous_secret_expires_at"}
TABLES = ("webhook_subscriptions", "marketplace_connections")

# Both tables as they were before rotation.
_SUBSCRIPTIONS = webhook_subscriptions(sa.column("secret_sealed", sa.LargeBinary()))
_CONNECTIONS = marketplace_connections(sa.column("secret_sealed", sa.LargeBinary()))


@pytest.fixture
def url_before_rotation(tmp_path: Path) -> Iterator[str]:
    with database_at(BEFORE, tmp_path, "rotation") as url:
        yield url


def _existing(url: str) -> tuple[uuid.UUID, str, uuid.UUID, str]:
    """A subscription and a connection made before rotation existed, with their secrets."""
    subscription_id, connection_id = uuid.uuid4(), uuid.uuid4()
    hook_secret, push_secret = "whsec_from_before_0123456789", "mksec_from_before_0123456789"
    now = utcnow()
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(_SUBSCRIPTIONS).values(
                    id=subscription_id,
                    url="https://erp.example.com/hooks",
                    description="",
                    event_types=["stock.changed"],
                    store_ids=None,
                    secret_sealed=webhooks.webhook_secrets(get_settings()).seal(
                        subscription_id, hook_secret
                    ),
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                sa.insert(_CONNECTIONS).values(
                    id=connection_id,
                    name="meituan",
                    channel="marketplace:meituan",
                    endpoint_url="https://mt.example.com/stock",
                    secret_sealed=marketplace.marketplace_secrets(get_settings()).seal(
                        connection_id, push_secret
                    ),
                    all_stores=True,
                    min_interval_ms=1000,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
    finally:
        engine.dispose()
    return subscription_id, hook_secret, connection_id, push_secret


def _columns(url: str) -> dict[str, set[str]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            return {t: {c["name"] for c in inspector.get_columns(t)} for t in TABLES}
    finally:
        engine.dispose()


def test_existing_secrets_sign_on_after_the_upgrade_with_nothing_rotated(
    url_before_rotation: str,
) -> None:
    url = url_before_rotation
    subscription_id, hook_secret, connection_id, push_secret = _existing(url)
    migrate.upgrade(url, ROTATION)
    assert all(columns >= ADDED for columns in _columns(url).values())

    database = Database.connect(url)
    try:
        with database.reader() as s:
            subscription = webhooks.get_subscription(s, subscription_id)
            connection = marketplace.get_connection(s, connection_id)
            assert (
                webhooks.webhook_secrets(get_settings()).open(
                    subscription_id, subscription.secret_sealed
                )
                == hook_secret
            )
            assert (
                marketplace.marketplace_secrets(get_settings()).open(
                    connection_id, connection.secret_sealed
                )
                == push_secret
            )
            for row in (subscription, connection):
                assert (row.previous_secret_sealed, row.previous_secret_expires_at) == (None, None)
    finally:
        database.dispose()


def test_a_downgrade_ends_an_overlap_and_keeps_the_newest_secret(url_before_rotation: str) -> None:
    url = url_before_rotation
    subscription_id, _, connection_id, _ = _existing(url)
    migrate.upgrade(url, ROTATION)
    hooks = webhooks.webhook_secrets(get_settings())
    pushes = marketplace.marketplace_secrets(get_settings())
    database = Database.connect(url)
    try:
        with database.writer() as s, s.begin():
            _, hook_rolled = webhooks.rotate_secret(s, subscription_id, sealer=hooks)
            _, push_rolled = marketplace.rotate_secret(s, connection_id, sealer=pushes)
    finally:
        database.dispose()

    migrate.downgrade(url, BEFORE)
    assert not any(ADDED & columns for columns in _columns(url).values())
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            hook_sealed = conn.scalar(
                sa.select(_SUBSCRIPTIONS.c.secret_sealed).where(
                    _SUBSCRIPTIONS.c.id == subscription_id
                )
            )
            push_sealed = conn.scalar(
                sa.select(_CONNECTIONS.c.secret_sealed).where(_CONNECTIONS.c.id == connection_id)
            )
    finally:
        engine.dispose()
    assert hooks.open(subscription_id, hook_sealed) == hook_rolled.secret
    assert pushes.open(connection_id, push_sealed) == push_rolled.secret
