"""Upgrading seals the signing secrets of existing marketplace connections, whose stock pushes
go on being signed with them, and downgrading gives them back in clear, on the engine under
test."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from tests.integrations.receiver import Receiver
from tests.integrations.relaying import relay_and_send
from tests.migrating import database_at, marketplace_connections
from zhongtai.core import migrate
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database, create_db_engine
from zhongtai.core.settings import get_settings
from zhongtai.integrations import marketplace
from zhongtai.integrations.marketplace_sender import StockPushSender
from zhongtai.integrations.marketplace_settings import MarketplaceSettings
from zhongtai.integrations.rules import verify_signature
from zhongtai.inventory import service as inventory

BEFORE = "0014_quotes_by_member"
SEALED = "0015_marketplace_secrets_sealed"

# The connections table as it was before secrets were sealed.
_CLEAR = marketplace_connections(sa.column("secret", sa.String()))
_SEALED = sa.table(
    "marketplace_connections",
    sa.column("id", sa.Uuid()),
    sa.column("secret_sealed", sa.LargeBinary()),
)


@pytest.fixture
def url_before_sealing(tmp_path: Path) -> Iterator[str]:
    with database_at(BEFORE, tmp_path, "mk_secrets") as url:
        yield url


def _connected_in_clear(url: str, secrets: dict[uuid.UUID, str], endpoint_url: str) -> None:
    """Connections as the schema before sealing kept them: their secrets in clear."""
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            now = utcnow()
            conn.execute(
                sa.insert(_CLEAR),
                [
                    {
                        "id": connection_id,
                        "name": f"mk{n}",
                        "channel": f"marketplace:mk{n}",
                        "endpoint_url": endpoint_url,
                        "secret": secret,
                        "all_stores": True,
                        "min_interval_ms": 100,
                        "active": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n, (connection_id, secret) in enumerate(secrets.items())
                ],
            )
    finally:
        engine.dispose()


def test_existing_secrets_are_sealed_on_upgrade_and_opened_again_on_downgrade(
    url_before_sealing: str,
) -> None:
    url = url_before_sealing
    secrets = {uuid.uuid4(): f"mksec_existing_{n}_0123456789abcdef" for n in range(3)}
    _connected_in_clear(url, secrets, "https://mt.example.com/stock")

    migrate.upgrade(url, SEALED)
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            sealed = dict(conn.execute(sa.select(_SEALED.c.id, _SEALED.c.secret_sealed)).all())
            columns = {c["name"] for c in sa.inspect(conn).get_columns("marketplace_connections")}
        assert "secret" not in columns
        sealer = marketplace.marketplace_secrets(get_settings())
        assert {cid: sealer.open(cid, blob) for cid, blob in sealed.items()} == secrets
        assert all(secret.encode() not in sealed[cid] for cid, secret in secrets.items())

        migrate.downgrade(url, BEFORE)
        with engine.connect() as conn:
            clear = dict(conn.execute(sa.select(_CLEAR.c.id, _CLEAR.c.secret)).all())
        assert clear == secrets
    finally:
        engine.dispose()


def test_a_secret_sealed_by_the_upgrade_still_signs_the_stock_pushes(
    url_before_sealing: str, receiver: Receiver
) -> None:
    url = url_before_sealing
    connection_id, secret = uuid.uuid4(), "mksec_from_before_sealing_0123456789"
    _connected_in_clear(url, {connection_id: secret}, receiver.url + "/before")
    migrate.upgrade(url)

    database = Database.connect(url)
    try:
        with database.writer() as s:
            factory = Factory(s)
            store, sku = factory.location(), CatalogFactory(s, factory).sku()
            s.commit()
        with database.writer() as s, s.begin():
            inventory.receive_stock(s, store.id, [inventory.ReceiptLine(sku.id, 6)])
            marketplace.resync_connection(s, connection_id)

        async def push() -> None:
            sender = StockPushSender(
                database.writer,
                MarketplaceSettings(allow_private_targets=True),  # the receiver is on loopback
                sealer=marketplace.marketplace_secrets(get_settings()),
            )
            try:
                await relay_and_send(
                    database, sender, lambda: bool(receiver.bodies("/before")), what="the push"
                )
            finally:
                await sender.close()

        asyncio.run(push())
    finally:
        database.dispose()

    got = receiver.bodies("/before")
    for request in got:
        signature = request.headers["Zhongtai-Signature"]
        assert verify_signature(secret, signature, request.body, now=int(time.time()))
    items = json.loads(got[-1].body)["items"]
    assert [(i["sku"], i["quantity"]) for i in items] == [(sku.code, 6)]
