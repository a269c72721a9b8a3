"""After a secret rotation, webhooks and stock pushes reach a real loopback receiver signed with
the new secret, during the overlap with the old one as well, after it with the new one alone;
and a rotation brings back a subscription or connection whose secret no longer opened, with its
waiting deliveries and stock."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from tests.integrations.events import PriceTagged
from tests.integrations.receiver import Receiver
from tests.integrations.relaying import relay_and_send
from zhongtai.catalog.models import Sku
from zhongtai.core.db import Database
from zhongtai.core.outbox import record_event
from zhongtai.core.settings import Settings
from zhongtai.integrations import marketplace, webhooks
from zhongtai.integrations.marketplace_models import MarketplaceConnection, MarketplaceStockPush
from zhongtai.integrations.marketplace_sender import StockPushSender
from zhongtai.integrations.marketplace_settings import MarketplaceSettings
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery
from zhongtai.integrations.rules import verify_signature
from zhongtai.integrations.sealed_secrets import SecretSealer
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.targets import TargetGuard
from zhongtai.integrations.webhook_sender import WebhookSender
from zhongtai.inventory import service as inventory
from zhongtai.stores.models import Location

HOUR = 3600
# The receiver is on loopback, an internal address: these tests allow private targets.
WEBHOOK_SETTINGS = EventSettings(
    webhook_backoff_base_seconds=0.01,
    webhook_backoff_cap_seconds=0.05,
    webhook_max_attempts=2,
    webhook_timeout_seconds=10,
    webhook_allow_private_targets=True,
)
PUSH_SETTINGS = MarketplaceSettings(
    backoff_base_seconds=0.05,
    backoff_cap_seconds=0.2,
    timeout_seconds=20,
    allow_private_targets=True,
)
LOOPBACK_ALLOWED = TargetGuard(allow_private=True)
APP_KEY = Settings(secret_key="secret-rotation-tests-0123456789abcdef")  # type: ignore[arg-type]
LOST_KEY = Settings(secret_key="the-key-that-was-lost-0123456789abcdef")  # type: ignore[arg-type]
HOOKS = webhooks.webhook_secrets(APP_KEY)
PUSHES = marketplace.marketplace_secrets(APP_KEY)


def _later(seconds: float) -> Callable[[], float]:
    """A sender's clock ``seconds`` ahead of the real one."""
    return lambda: time.time() + seconds


def _v1_entries(header: str) -> int:
    return sum(1 for item in header.split(",") if item.startswith("v1="))


def _send(db: Database, sender: WebhookSender | StockPushSender, done: Callable[[], bool]) -> None:
    async def run() -> None:
        try:
            await relay_and_send(db, sender, done)
        finally:
            await sender.close()

    asyncio.run(run())


@pytest.fixture
def stop_afterwards(db: Database) -> Iterator[list[uuid.UUID]]:
    """Subscriptions and connections to stop after the test: later tests' senders must not keep
    calling this test's (stopped) receiver."""
    owners: list[uuid.UUID] = []
    yield owners
    with db.writer() as s, s.begin():
        for owner_id in owners:
            if s.get(MarketplaceConnection, owner_id) is not None:
                marketplace.change_connection(
                    s, owner_id, marketplace.ConnectionChange(active=False), guard=LOOPBACK_ALLOWED
                )
            else:
                webhooks.deactivate_subscription(s, owner_id)


# -- webhooks ----------------------------------------------------------------------------------


def _webhook_sender(db: Database, clock: Callable[[], float] = time.time) -> WebhookSender:
    return WebhookSender(db.writer, WEBHOOK_SETTINGS, sealer=HOOKS, clock=clock)


def _subscribe(db: Database, url: str, *, sealer: SecretSealer = HOOKS) -> tuple[uuid.UUID, str]:
    with db.writer() as s, s.begin():
        sub, secret = webhooks.create_subscription(
            s,
            url=url,
            event_types=["test.price_tagged"],
            guard=LOOPBACK_ALLOWED,
            sealer=sealer,
        )
    return sub.id, secret


def _rotate_subscription(db: Database, subscription_id: uuid.UUID, overlap_seconds: int) -> str:
    with db.writer() as s, s.begin():
        _, rolled = webhooks.rotate_secret(
            s, subscription_id, sealer=HOOKS, overlap_seconds=overlap_seconds
        )
    return rolled.secret


def _tag(db: Database, tag: str) -> None:
    with db.writer() as s, s.begin():
        record_event(s, PriceTagged(tag=tag), aggregate_type="tag", aggregate_id=tag)


def _statuses(db: Database, subscription_id: uuid.UUID) -> list[DeliveryStatus]:
    with db.reader() as s:
        return list(
            s.scalars(
                select(WebhookDelivery.status)
                .where(WebhookDelivery.subscription_id == subscription_id)
                .order_by(WebhookDelivery.event_seq)
            )
        )


def test_deliveries_carry_both_signatures_during_the_overlap_and_the_new_one_after(
    db: Database, receiver: Receiver, stop_afterwards: list[uuid.UUID]
) -> None:
    sub_id, old = _subscribe(db, f"{receiver.url}/rotated")
    stop_afterwards.append(sub_id)
    new = _rotate_subscription(db, sub_id, overlap_seconds=HOUR)

    _tag(db, "during")
    _send(
        db,
        _webhook_sender(db),
        lambda: len(receiver.bodies("/rotated")) == 1,
    )
    [during] = receiver.bodies("/rotated")
    header = during.headers["Zhongtai-Signature"]
    assert _v1_entries(header) == 2
    now = int(time.time())
    assert verify_signature(new, header, during.body, now=now)
    assert verify_signature(old, header, during.body, now=now), "a receiver not yet switched"
    assert not verify_signature("whsec_someone_else_0123456789", header, during.body, now=now)

    # Two hours on, the hour of overlap is over: the new secret signs alone.
    _tag(db, "after")
    _send(
        db,
        _webhook_sender(db, clock=_later(2 * HOUR)),
        lambda: len(receiver.bodies("/rotated")) == 2,
    )
    after = receiver.bodies("/rotated")[1]
    assert json.loads(after.body)["payload"]["tag"] == "after"
    header = after.headers["Zhongtai-Signature"]
    later = int(time.time()) + 2 * HOUR
    assert _v1_entries(header) == 1
    assert verify_signature(new, header, after.body, now=later)
    assert not verify_signature(old, header, after.body, now=later)


def test_with_no_overlap_the_new_secret_signs_alone_at_once(
    db: Database, receiver: Receiver, stop_afterwards: list[uuid.UUID]
) -> None:
    sub_id, old = _subscribe(db, f"{receiver.url}/switched")
    stop_afterwards.append(sub_id)
    new = _rotate_subscription(db, sub_id, overlap_seconds=0)
    _tag(db, "switched")
    _send(db, _webhook_sender(db), lambda: bool(receiver.bodies("/switched")))
    [got] = receiver.bodies("/switched")
    header, now = got.headers["Zhongtai-Signature"], int(time.time())
    assert verify_signature(new, header, got.body, now=now)
    assert not verify_signature(old, header, got.body, now=now)


def test_a_rotation_brings_back_a_subscription_whose_secret_no_longer_opened(
    db: Database, receiver: Receiver, stop_afterwards: list[uuid.UUID]
) -> None:
    # Sealed under a key the app no longer runs with: nothing can be signed, nothing is sent.
    sub_id, _ = _subscribe(db, f"{receiver.url}/lost", sealer=webhooks.webhook_secrets(LOST_KEY))
    stop_afterwards.append(sub_id)
    _tag(db, "while-lost")
    _send(db, _webhook_sender(db), lambda: _statuses(db, sub_id) == [DeliveryStatus.DEAD])
    assert receiver.bodies("/lost") == []

    new = _rotate_subscription(db, sub_id, overlap_seconds=HOUR)
    with db.writer() as s, s.begin():
        assert webhooks.redrive_dead(s, sub_id) == 1
    _tag(db, "after-rotation")
    _send(db, _webhook_sender(db), lambda: len(receiver.bodies("/lost")) == 2)

    got = receiver.bodies("/lost")
    assert sorted(json.loads(r.body)["payload"]["tag"] for r in got) == [
        "after-rotation",
        "while-lost",
    ]
    for request in got:
        header = request.headers["Zhongtai-Signature"]
        assert _v1_entries(header) == 1, "the lost secret is not kept for an overlap"
        assert verify_signature(new, header, request.body, now=int(time.time()))


# -- marketplace stock pushes --------------------------------------------------------------------


def _stocked_store(db: Database, quantity: int) -> tuple[Location, Sku]:
    with db.writer() as s:
        factory = Factory(s)
        store, sku = factory.location(), CatalogFactory(s, factory).sku()
        s.commit()
    _receive(db, store, sku, quantity)
    return store, sku


def _receive(db: Database, store: Location, sku: Sku, quantity: int) -> None:
    with db.writer() as s, s.begin():
        inventory.receive_stock(s, store.id, [inventory.ReceiptLine(sku.id, quantity)])


def _connect(
    db: Database, url: str, store: Location, *, sealer: SecretSealer = PUSHES
) -> tuple[uuid.UUID, str]:
    with db.writer() as s, s.begin():
        view, secret = marketplace.create_connection(
            s,
            name=f"mk{uuid.uuid4().hex[:10]}",
            endpoint_url=url,
            guard=LOOPBACK_ALLOWED,
            sealer=sealer,
            store_ids=[store.id],
            min_interval_ms=50,
        )
    return view.connection.id, secret


def _rotate_connection(db: Database, connection_id: uuid.UUID, overlap_seconds: int) -> str:
    with db.writer() as s, s.begin():
        _, rolled = marketplace.rotate_secret(
            s, connection_id, sealer=PUSHES, overlap_seconds=overlap_seconds
        )
    return rolled.secret


def _settled(db: Database, connection_id: uuid.UUID) -> bool:
    with db.reader() as s:
        rows = s.scalars(
            select(MarketplaceStockPush).where(MarketplaceStockPush.connection_id == connection_id)
        ).all()
    return bool(rows) and all(r.pushed_version == r.version for r in rows)


def _push_until(
    db: Database,
    connection_id: uuid.UUID,
    receiver: Receiver,
    path: str,
    count: int,
    clock: Callable[[], float] = time.time,
) -> None:
    sender = StockPushSender(db.writer, PUSH_SETTINGS, sealer=PUSHES, clock=clock)
    _send(
        db,
        sender,
        lambda: len(receiver.bodies(path)) >= count and _settled(db, connection_id),
    )


def _quantity(body: bytes, sku: Sku) -> int:
    [item] = [i for i in json.loads(body)["items"] if i["sku"] == sku.code]
    return int(item["quantity"])


def test_pushes_carry_both_signatures_during_the_overlap_and_the_new_one_after(
    db: Database, receiver: Receiver, stop_afterwards: list[uuid.UUID]
) -> None:
    store, sku = _stocked_store(db, 3)
    connection_id, old = _connect(db, f"{receiver.url}/stock", store)
    stop_afterwards.append(connection_id)
    _push_until(db, connection_id, receiver, "/stock", 1)  # the starting snapshot
    new = _rotate_connection(db, connection_id, overlap_seconds=HOUR)

    _receive(db, store, sku, 2)
    _push_until(db, connection_id, receiver, "/stock", 2)
    during = receiver.bodies("/stock")[-1]
    assert _quantity(during.body, sku) == 5
    header, now = during.headers["Zhongtai-Signature"], int(time.time())
    assert _v1_entries(header) == 2
    assert verify_signature(new, header, during.body, now=now)
    assert verify_signature(old, header, during.body, now=now), "a bridge not yet switched"

    _receive(db, store, sku, 1)
    _push_until(db, connection_id, receiver, "/stock", 3, clock=_later(2 * HOUR))
    after = receiver.bodies("/stock")[-1]
    assert _quantity(after.body, sku) == 6
    header, later = after.headers["Zhongtai-Signature"], int(time.time()) + 2 * HOUR
    assert _v1_entries(header) == 1
    assert verify_signature(new, header, after.body, now=later)
    assert not verify_signature(old, header, after.body, now=later)


def test_a_rotation_brings_back_a_connection_whose_secret_no_longer_opened(
    db: Database, receiver: Receiver, stop_afterwards: list[uuid.UUID]
) -> None:
    store, sku = _stocked_store(db, 4)
    lost = marketplace.marketplace_secrets(LOST_KEY)
    connection_id, _ = _connect(db, f"{receiver.url}/lost-stock", store, sealer=lost)
    stop_afterwards.append(connection_id)

    def failed_not_opening() -> bool:
        with db.reader() as s:
            errors = s.scalars(
                select(MarketplaceStockPush.last_error).where(
                    MarketplaceStockPush.connection_id == connection_id
                )
            ).all()
        return any(e and "rotate the connection's secret" in e for e in errors)

    _send(db, StockPushSender(db.writer, PUSH_SETTINGS, sealer=PUSHES), failed_not_opening)
    assert receiver.bodies("/lost-stock") == []

    new = _rotate_connection(db, connection_id, overlap_seconds=HOUR)
    _push_until(db, connection_id, receiver, "/lost-stock", 1)
    [push] = receiver.bodies("/lost-stock")
    assert _quantity(push.body, sku) == 4, "the stock that waited goes out"
    header = push.headers["Zhongtai-Signature"]
    assert _v1_entries(header) == 1
    assert verify_signature(new, header, push.body, now=int(time.time()))
