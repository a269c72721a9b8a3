"""A changed channel allocation reaches the marketplace by itself: setting, changing or removing
the rule through the API pushes the new sellable quantity of the stores it governs, to the
connections selling that channel only, with no resync."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import TEST_SECRET, Factory
from tests.integrations.receiver import Receiver
from tests.integrations.test_marketplace_push import Chain, _pushing, _unpublished, pushes
from zhongtai.app import create_app
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.core.settings import Settings
from zhongtai.integrations.providers import Providers
from zhongtai.stores.models import Location

ALLOCATIONS = "/api/v1/inventory/allocations"


@pytest.fixture
def chain(db: Database) -> Iterator[Chain]:
    built = Chain(db)
    yield built
    # Later tests' senders must not keep calling this test's (stopped) receiver.
    built.disconnect_all()


@pytest.fixture
def api(own_database_url: str, db: Database, providers: Providers) -> Iterator[TestClient]:
    """The API on the module's own database (it relays nothing itself: the test does)."""
    settings = Settings(
        database_url=own_database_url, secret_key=TEST_SECRET, log_json=False, log_level="WARNING"
    )  # type: ignore[arg-type]
    with TestClient(create_app(settings, db=db, providers=providers, desk_db=db)) as client:
        yield client


def _headers(db: Database, role: Role, stores: list[Location] | None = None) -> dict[str, str]:
    with db.writer() as s:
        return Factory(s).staff_headers(role, stores)


def _latest(receiver: Receiver, path: str) -> dict[tuple[str, str], int]:
    """What the marketplace was last told of each (store, SKU)."""
    shown: dict[tuple[str, str], int] = {}
    for push in pushes(receiver, path):
        shown |= {(push.store, code): q for code, (q, _) in push.items.items()}
    return shown


def _settled(db: Database, chain: Chain, *connections: Any) -> None:
    """Relay every event and send every push they cause."""
    _pushing(
        db,
        lambda: not _unpublished(db) and not any(chain.waiting(c.id) for c in connections),
    )


def _allocate(api: TestClient, headers: dict[str, str], **body: Any) -> Any:
    r = api.put(ALLOCATIONS, headers=headers, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_allocation_changed_through_the_api_pushes_the_new_quantity_without_a_resync(
    db: Database, chain: Chain, receiver: Receiver, api: TestClient
) -> None:
    store, sku = chain.store(), chain.sku()
    chain.receive(store, sku, 20)
    connection, _ = chain.connect(receiver.url + "/alloc", [store], min_interval_ms=50)
    _settled(db, chain, connection)
    assert _latest(receiver, "/alloc") == {(store.code, sku.code): 20}

    manager = _headers(db, Role.STORE_MANAGER, [store])
    rule = _allocate(
        api,
        manager,
        channel=connection.channel,
        location_id=str(store.id),
        share_percent=40,
        keep_units=2,
    )
    _settled(db, chain, connection)
    # 40% of the store's 20 (and never the 2 kept for walk-ins): what the marketplace may sell.
    assert _latest(receiver, "/alloc") == {(store.code, sku.code): 8}
    assert chain.sellable(connection.channel, store, sku) == 8

    # The same rule again changes nothing, and announces nothing.
    told = len(pushes(receiver, "/alloc"))
    _allocate(
        api,
        manager,
        channel=connection.channel,
        location_id=str(store.id),
        share_percent=40,
        keep_units=2,
    )
    _settled(db, chain, connection)
    assert len(pushes(receiver, "/alloc")) == told

    # Removing the rule gives the channel the store's whole ATP again.
    r = api.delete(f"{ALLOCATIONS}/{rule['id']}", headers=manager)
    assert r.status_code == 204, r.text
    _settled(db, chain, connection)
    assert _latest(receiver, "/alloc") == {(store.code, sku.code): 20}


def test_a_chain_wide_rule_pushes_the_stores_it_governs_to_the_connections_of_its_channel(
    db: Database, chain: Chain, receiver: Receiver, api: TestClient
) -> None:
    own_rule, governed = chain.store(), chain.store()
    sku = chain.sku()
    for store in (own_rule, governed):
        chain.receive(store, sku, 40)
    connection, _ = chain.connect(receiver.url + "/chain", [own_rule, governed], min_interval_ms=50)
    other, _ = chain.connect(receiver.url + "/other", [own_rule, governed], min_interval_ms=50)
    hq = _headers(db, Role.HQ_ADMIN)
    _allocate(
        api,
        hq,
        channel=connection.channel,
        location_id=str(own_rule.id),
        share_percent=100,
        keep_units=0,
    )
    _settled(db, chain, connection, other)
    told = {path: len(pushes(receiver, path)) for path in ("/chain", "/other")}

    _allocate(api, hq, channel=connection.channel, location_id=None, share_percent=25, keep_units=0)
    _settled(db, chain, connection, other)
    assert _latest(receiver, "/chain") == {
        (own_rule.code, sku.code): 40,
        (governed.code, sku.code): 10,
    }
    later = pushes(receiver, "/chain")[told["/chain"] :]
    assert {p.store for p in later} == {governed.code}, "a store with a rule of its own is not"
    assert len(pushes(receiver, "/other")) == told["/other"], "another channel's connection is not"

    with db.reader() as s:
        [event] = s.scalars(
            select(OutboxEvent).where(
                OutboxEvent.type == "allocation.changed",
                OutboxEvent.payload["channel"].as_string() == connection.channel,
                OutboxEvent.store_id.is_(None),
            )
        ).all()
    assert (event.payload["share_percent"], event.payload["keep_units"]) == (25, 0)
