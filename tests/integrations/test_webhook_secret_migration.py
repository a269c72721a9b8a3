"""Upgrading seals the signing secrets of existing subscriptions (the app then opens them) and
downgrading gives them back in clear, on the engine under test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.migrating import database_at, webhook_subscriptions
from zhongtai.core import migrate
from zhongtai.core.clock import utcnow
from zhongtai.core.db import create_db_engine
from zhongtai.core.settings import get_settings
from zhongtai.integrations.webhooks import webhook_secrets

BEFORE = "0011_points_earn_rules"
HARDENED = "0012_webhook_hardening"

# The subscriptions table as it was before secrets were sealed.
_CLEAR = webhook_subscriptions(sa.column("secret", sa.String()))
_SEALED = sa.table(
    "webhook_subscriptions",
    sa.column("id", sa.Uuid()),
    sa.column("secret_sealed", sa.LargeBinary()),
)


@pytest.fixture
def url_before_hardening(tmp_path: Path) -> Iterator[str]:
    with database_at(BEFORE, tmp_path, "secrets") as url:
        yield url


def test_existing_secrets_are_sealed_on_upgrade_and_opened_again_on_downgrade(
    url_before_hardening: str,
) -> None:
    url = url_before_hardening
    secrets = {uuid.uuid4(): f"whsec_existing_{n}_0123456789abcdef" for n in range(3)}
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            now = utcnow()
            conn.execute(
                sa.insert(_CLEAR),
                [
                    {
                        "id": sub_id,
                        "url": "https://erp.example.com/hook",
                        "description": "",
                        "event_types": ["order.paid"],
                        "store_ids": None,
                        "secret": secret,
                        "active": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for sub_id, secret in secrets.items()
                ],
            )
        migrate.upgrade(url, HARDENED)
        with engine.connect() as conn:
            sealed = dict(conn.execute(sa.select(_SEALED.c.id, _SEALED.c.secret_sealed)).all())
            columns = {c["name"] for c in sa.inspect(conn).get_columns("webhook_subscriptions")}
        assert "secret" not in columns
        sealer = webhook_secrets(get_settings())
        assert {sub_id: sealer.open(sub_id, blob) for sub_id, blob in sealed.items()} == secrets
        assert all(secret.encode() not in sealed[sub_id] for sub_id, secret in secrets.items())

        migrate.downgrade(url, BEFORE)
        with engine.connect() as conn:
            clear = dict(conn.execute(sa.select(_CLEAR.c.id, _CLEAR.c.secret)).all())
        assert clear == secrets
    finally:
        engine.dispose()
