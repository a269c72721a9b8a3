"""Stock pushes reach a real loopback marketplace: coalesced per SKU, newest value last, the
channel's share only, only the connection's stores, retried until a failing receiver recovers,
and a stalled marketplace never holds up another."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver
from sqlalchemy import func, select, update

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from tests.integrations.rebinding import EverythingIsLoopback
from tests.integrations.receiver import Receiver
from tests.integrations.relaying import relay_and_send
from zhongtai.catalog.models import Sku
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.core.settings import Settings
from zhongtai.integrations import marketplace
from zhongtai.integrations.marketplace_changes import CONSUMER as STOCK_PUSH
from zhongtai.integrations.marketplace_models import MarketplaceConnection, MarketplaceStockPush
from zhongtai.integrations.marketplace_sender import StockPushSender
from zhongtai.integrations.marketplace_settings import MarketplaceSettings
from zhongtai.integrations.models import HandledEvent
from zhongtai.integrations.rules import verify_signature
from zhongtai.integrations.sealed_secrets import SecretSealer
from zhongtai.integrations.targets import TargetGuard
from zhongtai.inventory import service as inventory
from zhongtai.inventory.allocation import channel_atp_at, set_allocation
from zhongtai.stores.models import Location

FAST_RETRIES = MarketplaceSettings(
    backoff_base_seconds=0.05,
    backoff_cap_seconds=0.2,
    timeout_seconds=20,
    allow_private_targets=True,  # the receiver is on loopback
)
LOOPBACK_ALLOWED = TargetGuard(allow_private=True)
SEALER = marketplace.marketplace_secrets(
    Settings(secret_key="stock-push-tests-0123456789abcdef")  # type: ignore[arg-type]
)
#: The relay and the stock push sender, pass after pass, until a test's condition holds.
pump = functools.partial(relay_and_send, what="the stock pushes")


@dataclass
class Push:
    store: str
    items: dict[str, tuple[int, int]]  # sku code -> (quantity, version)
    sent_at: datetime
    signature: str
    body: bytes


class Chain:
    """Stores, SKUs and stock in the module's own database, each change committed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.connections: list[uuid.UUID] = []

    def store(self) -> Location:
        with self.db.writer() as s:
            location = Factory(s).location()
            s.commit()
            return location

    def sku(self) -> Sku:
        with self.db.writer() as s:
            return CatalogFactory(s, Factory(s)).sku()

    def receive(self, store: Location, sku: Sku, quantity: int) -> None:
        with self.db.writer() as s, s.begin():
            inventory.receive_stock(s, store.id, [inventory.ReceiptLine(sku.id, quantity)])

    def take(self, store: Location, sku: Sku, quantity: int) -> None:
        with self.db.writer() as s, s.begin():
            inventory.adjust_stock(s, store.id, sku.id, -quantity, reason="damaged", approver=None)

    def allocate(self, channel: str, store: Location, share_percent: int, keep_units: int) -> None:
        with self.db.writer() as s, s.begin():
            set_allocation(s, channel, store.id, share_percent=share_percent, keep_units=keep_units)

    def sellable(self, channel: str, store: Location, sku: Sku) -> int:
        with self.db.reader() as s:
            return channel_atp_at(s, channel, [store.id], [sku.id]).get((store.id, sku.id), 0)

    def connect(self, url: str, stores: list[Location] | None = None, **kw: Any) -> Any:
        with self.db.writer() as s, s.begin():
            view, secret = marketplace.create_connection(
                s,
                name=f"mk{uuid.uuid4().hex[:10]}",
                endpoint_url=url,
                guard=kw.pop("guard", LOOPBACK_ALLOWED),
                sealer=SEALER,
                store_ids=None if stores is None else [x.id for x in stores],
                **kw,
            )
        self.connections.append(view.connection.id)
        return view.connection, secret

    def push_rows(self, connection_id: uuid.UUID) -> list[MarketplaceStockPush]:
        with self.db.reader() as s:
            return list(
                s.scalars(
                    select(MarketplaceStockPush).where(
                        MarketplaceStockPush.connection_id == connection_id
                    )
                )
            )

    def waiting(self, connection_id: uuid.UUID) -> int:
        return sum(1 for r in self.push_rows(connection_id) if r.version > r.pushed_version)

    def disconnect_all(self) -> None:
        with self.db.writer() as s, s.begin():
            for connection_id in self.connections:
                marketplace.change_connection(
                    s,
                    connection_id,
                    marketplace.ConnectionChange(active=False),
                    guard=LOOPBACK_ALLOWED,
                )


@pytest.fixture
def chain(db: Database) -> Iterator[Chain]:
    built = Chain(db)
    yield built
    # Later tests' senders must not keep calling this test's (stopped) receiver.
    built.disconnect_all()


def pushes(receiver: Receiver, path: str) -> list[Push]:
    with receiver.lock:
        got = [r for r in receiver.received if r.path == path]
    out = []
    for r in got:
        body = json.loads(r.body)
        items = {i["sku"]: (i["quantity"], i["version"]) for i in body["items"]}
        sent_at = datetime.fromisoformat(body["sent_at"])
        out.append(Push(body["store"], items, sent_at, r.headers["Zhongtai-Signature"], r.body))
    return out


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_hundred_rapid_changes_make_a_few_pushes_spaced_by_the_interval_newest_last(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    store, sku = chain.store(), chain.sku()
    chain.receive(store, sku, 50)
    interval_ms = 300
    connection, _ = chain.connect(receiver.url + "/rapid", [store], min_interval_ms=interval_ms)
    finished = threading.Event()

    def hundred_changes() -> None:
        for n in range(100):
            if n % 3 == 2:
                chain.take(store, sku, 1)
            else:
                chain.receive(store, sku, 2)
        finished.set()

    def settled() -> bool:
        got = pushes(receiver, "/rapid")
        return (
            finished.is_set()
            and not _unpublished(db)
            and not chain.waiting(connection.id)
            and bool(got)
            and got[-1].items[sku.code][0] == chain.sellable(connection.channel, store, sku)
        )

    async def both() -> None:
        sender = StockPushSender(db.writer, FAST_RETRIES, sealer=SEALER, reader=db.reader)
        try:
            await asyncio.gather(pump(db, sender, settled), asyncio.to_thread(hundred_changes))
        finally:
            await sender.close()

    run(both())
    got = pushes(receiver, "/rapid")
    final = chain.sellable(connection.channel, store, sku)
    assert final == 50 + 67 * 2 - 33
    assert got[-1].items[sku.code][0] == final
    [row] = chain.push_rows(connection.id)
    assert row.version >= 101, "every change was counted"
    assert row.pushed_version == row.version == got[-1].items[sku.code][1]
    assert len(got) < 50, f"{len(got)} pushes for a hundred changes"
    versions = [p.items[sku.code][1] for p in got]
    assert versions == sorted(set(versions)), "a push never repeats or goes back a version"
    gaps = [b.sent_at - a.sent_at for a, b in itertools.pairwise(got)]
    assert all(gap >= timedelta(milliseconds=interval_ms) for gap in gaps), gaps


def _pushing(
    db: Database,
    done: Callable[[], bool],
    settings: MarketplaceSettings = FAST_RETRIES,
    resolver: AbstractResolver | None = None,
    sealer: SecretSealer = SEALER,
) -> None:
    async def go() -> None:
        sender = StockPushSender(
            db.writer, settings, sealer=sealer, reader=db.reader, resolver=resolver
        )
        try:
            await pump(db, sender, done)
        finally:
            await sender.close()

    run(go())


def test_a_failing_marketplace_gets_the_newest_quantity_once_it_recovers(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    store, sku = chain.store(), chain.sku()
    chain.receive(store, sku, 10)
    receiver.failures_left["/flaky"] = 3
    connection, _ = chain.connect(receiver.url + "/flaky", [store], min_interval_ms=100)

    def failed_once() -> bool:
        return any(r.failures >= 1 for r in chain.push_rows(connection.id))

    _pushing(db, failed_once)
    assert pushes(receiver, "/flaky") == []
    # While the marketplace is down the stock keeps moving: it must learn the newest figure.
    chain.take(store, sku, 4)
    chain.receive(store, sku, 7)
    _pushing(db, lambda: bool(pushes(receiver, "/flaky")) and not chain.waiting(connection.id))

    got = pushes(receiver, "/flaky")
    assert receiver.failures_left["/flaky"] == 0, "every failure was retried"
    assert got[-1].items[sku.code][0] == 13 == chain.sellable(connection.channel, store, sku)
    assert all(p.items[sku.code][0] == 13 for p in got), "no stale figure after the recovery"
    [row] = chain.push_rows(connection.id)
    assert (row.failures, row.last_error, row.pushed_quantity) == (0, None, 13)


def test_the_marketplace_gets_its_channel_share_not_the_store_stock_signed(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    store = chain.store()
    kept, shared = chain.sku(), chain.sku()
    chain.receive(store, kept, 20)
    chain.receive(store, shared, 3)
    connection, secret = chain.connect(receiver.url + "/share", [store])
    chain.allocate(connection.channel, store, share_percent=50, keep_units=2)

    def both_pushed() -> bool:
        got = pushes(receiver, "/share")
        return bool(got) and not chain.waiting(connection.id)

    _pushing(db, both_pushed)
    latest: dict[str, int] = {}
    for push in pushes(receiver, "/share"):
        assert push.store == store.code
        assert verify_signature(secret, push.signature, push.body, now=int(time.time()))
        latest |= {code: quantity for code, (quantity, _) in push.items.items()}
    # Store ATP 20 and 3; the channel may sell half, keeping 2 back for walk-ins.
    assert latest == {kept.code: 10, shared.code: 1}


def test_a_store_the_connection_does_not_sell_from_sends_nothing(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    mine, other, sku = chain.store(), chain.store(), chain.sku()
    connection, _ = chain.connect(receiver.url + "/mine", [mine])
    chain.receive(other, sku, 9)
    chain.receive(mine, sku, 4)

    _pushing(db, lambda: bool(pushes(receiver, "/mine")) and not chain.waiting(connection.id))
    got = pushes(receiver, "/mine")
    assert {p.store for p in got} == {mine.code}
    assert got[-1].items == {sku.code: (4, got[-1].items[sku.code][1])}
    assert {r.location_id for r in chain.push_rows(connection.id)} == {mine.id}


def test_a_stalled_marketplace_does_not_hold_up_another(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    store, sku = chain.store(), chain.sku()
    receiver.stalled.add("/stalled")
    slow, _ = chain.connect(receiver.url + "/stalled", [store])
    fast, _ = chain.connect(receiver.url + "/fast", [store])
    chain.receive(store, sku, 6)

    async def go() -> None:
        sender = StockPushSender(db.writer, FAST_RETRIES, sealer=SEALER, reader=db.reader)
        try:
            await pump(
                db, sender, lambda: bool(pushes(receiver, "/fast")) and not chain.waiting(fast.id)
            )
            assert pushes(receiver, "/stalled") == [], "the stalled request is still open"
            assert (slow.id, store.id) in sender.in_flight
            receiver.release.set()
            await pump(
                db,
                sender,
                lambda: bool(pushes(receiver, "/stalled")) and not chain.waiting(slow.id),
            )
        finally:
            await sender.close()

    run(go())
    assert pushes(receiver, "/fast")[-1].items[sku.code][0] == 6
    assert pushes(receiver, "/stalled")[-1].items[sku.code][0] == 6


def test_a_paused_connection_catches_up_with_the_newest_stock_when_resumed(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    store, sku = chain.store(), chain.sku()
    connection, _ = chain.connect(receiver.url + "/paused", [store])
    with db.writer() as s, s.begin():
        marketplace.change_connection(
            s, connection.id, marketplace.ConnectionChange(active=False), guard=LOOPBACK_ALLOWED
        )
    chain.receive(store, sku, 5)
    _pushing(db, lambda: not _unpublished(db))
    assert pushes(receiver, "/paused") == []
    chain.receive(store, sku, 3)
    with db.writer() as s, s.begin():
        marketplace.change_connection(
            s, connection.id, marketplace.ConnectionChange(active=True), guard=LOOPBACK_ALLOWED
        )

    _pushing(db, lambda: bool(pushes(receiver, "/paused")) and not chain.waiting(connection.id))
    assert [p.items[sku.code][0] for p in pushes(receiver, "/paused")] == [8]


def test_stock_changes_with_no_connection_active_are_passed_by_and_a_new_one_gets_the_newest(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    with db.writer() as s, s.begin():  # earlier tests' connections: switched off
        s.execute(update(MarketplaceConnection).values(active=False))
    store, sku = chain.store(), chain.sku()
    chain.receive(store, sku, 5)
    chain.take(store, sku, 1)
    _pushing(db, lambda: not _unpublished(db))
    with db.reader() as s:
        changes = [
            e.id
            for e in s.scalars(select(OutboxEvent).where(OutboxEvent.type == "stock.changed"))
            if e.payload["sku_id"] == str(sku.id)
        ]
        claims = s.scalar(
            select(func.count())
            .select_from(HandledEvent)
            .where(HandledEvent.consumer == STOCK_PUSH, HandledEvent.event_id.in_(changes))
        )
    assert len(changes) == 2
    assert claims == 0, "nothing to push to: the changes were not claimed"

    connection, _ = chain.connect(receiver.url + "/late", [store])
    _pushing(db, lambda: bool(pushes(receiver, "/late")) and not chain.waiting(connection.id))
    assert [p.items[sku.code][0] for p in pushes(receiver, "/late")] == [
        chain.sellable(connection.channel, store, sku)
    ]


GUARDED = FAST_RETRIES.model_copy(update={"allow_private_targets": False})


def _refused_twice(chain: Chain, connection_id: uuid.UUID) -> Callable[[], bool]:
    """Done once the refusal was recorded, and recorded again after its backoff."""
    return lambda: any(r.failures >= 2 for r in chain.push_rows(connection_id))


def test_an_address_written_in_the_url_is_refused_when_pushed_and_recorded_as_a_failure(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    store, sku = chain.store(), chain.sku()
    chain.receive(store, sku, 5)
    # Made while loopback was allowed; the sender of a deployment that refuses it must not send.
    connection, _ = chain.connect(receiver.url + "/literal", [store])

    _pushing(db, _refused_twice(chain, connection.id), GUARDED)
    assert pushes(receiver, "/literal") == []
    [row] = chain.push_rows(connection.id)
    assert row.last_error is not None
    assert "127.0.0.1 is a loopback address" in row.last_error
    assert "ZHONGTAI_MARKETPLACE_ALLOW_PRIVATE_TARGETS" in row.last_error
    assert row.version > row.pushed_version == 0, "the SKU stays waiting"


def test_a_host_that_came_to_resolve_to_an_internal_address_is_not_pushed_to_until_allowed(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    store, sku = chain.store(), chain.sku()
    chain.receive(store, sku, 5)
    port = receiver.url.rsplit(":", 1)[1]
    # When connected, the name was public (no request goes anywhere at connection time).
    public_then = TargetGuard(resolve=lambda host, port: ["93.184.215.14"])
    connection, _ = chain.connect(
        f"http://bridge.example.test:{port}/renamed", [store], guard=public_then
    )

    _pushing(db, _refused_twice(chain, connection.id), GUARDED, EverythingIsLoopback())
    assert pushes(receiver, "/renamed") == []
    [row] = chain.push_rows(connection.id)
    assert row.last_error is not None
    assert "bridge.example.test resolves to 127.0.0.1 is a loopback address" in row.last_error
    assert row.pushed_version == 0

    # The same resolver with private targets allowed reaches the receiver: the refusal above
    # came from the guard, not from a lookup that failed.
    _pushing(
        db,
        lambda: bool(pushes(receiver, "/renamed")) and not chain.waiting(connection.id),
        FAST_RETRIES,
        EverythingIsLoopback(),
    )
    assert [p.items[sku.code][0] for p in pushes(receiver, "/renamed")] == [5]
    [row] = chain.push_rows(connection.id)
    assert (row.failures, row.last_error, row.pushed_quantity) == (0, None, 5)


def test_a_secret_sealed_under_another_key_sends_nothing_until_the_key_is_back(
    db: Database, chain: Chain, receiver: Receiver
) -> None:
    store, sku = chain.store(), chain.sku()
    chain.receive(store, sku, 4)
    connection, secret = chain.connect(receiver.url + "/rekeyed", [store])
    rotated = marketplace.marketplace_secrets(
        Settings(secret_key="a-rotated-secret-key-0123456789abcdef")  # type: ignore[arg-type]
    )

    _pushing(db, _refused_twice(chain, connection.id), sealer=rotated)
    assert pushes(receiver, "/rekeyed") == [], "nothing unsigned or wrongly signed goes out"
    [row] = chain.push_rows(connection.id)
    assert row.last_error is not None
    assert row.last_error.startswith("not sent: the signing secret does not open with this")
    assert "ZHONGTAI_SECRET_KEY" in row.last_error
    assert secret not in row.last_error
    assert row.pushed_version == 0, "the SKU stays waiting"

    # Back under the key it was sealed with, the waiting stock goes out, signed as before.
    _pushing(db, lambda: bool(pushes(receiver, "/rekeyed")) and not chain.waiting(connection.id))
    [push] = pushes(receiver, "/rekeyed")
    assert push.items[sku.code][0] == 4
    assert verify_signature(secret, push.signature, push.body, now=int(time.time()))


def _unpublished(db: Database) -> int:
    with db.reader() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
            or 0
        )
