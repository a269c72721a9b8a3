"""Webhooks reach a real loopback receiver: signed, in order, retried, dead-lettered, re-driven,
and a stalled endpoint never holds up the others."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from tests.integrations.events import PriceTagged, ShelfCounted
from tests.integrations.receiver import Receiver, http_receiver
from zhongtai.core.db import Database
from zhongtai.core.outbox import record_event
from zhongtai.integrations import webhooks
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.relay import Relay
from zhongtai.integrations.rules import verify_signature
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhook_sender import WebhookSender

FAST_RETRIES = EventSettings(
    webhook_backoff_base_seconds=0.01,
    webhook_backoff_cap_seconds=0.05,
    webhook_max_attempts=3,
    webhook_timeout_seconds=10,
)


@pytest.fixture(scope="module")
def db(own_database_url: str) -> Iterator[Database]:
    database = Database.connect(own_database_url, pool_size=8, max_overflow=4)
    yield database
    database.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


def _subscribe(db: Database, url: str, types: list[str]) -> tuple[WebhookSubscription, str]:
    with db.writer() as s, s.begin():
        sub, secret = webhooks.create_subscription(s, url=url, event_types=types)
    return sub, secret


def _tag(db: Database, tag: str, aggregate: str = "T") -> None:
    with db.writer() as s, s.begin():
        record_event(s, PriceTagged(tag=tag), aggregate_type="tag", aggregate_id=aggregate)


async def _pump(db: Database, sender: WebhookSender, done: Callable[[], bool]) -> None:
    relay = Relay(db.writer)
    deadline = time.monotonic() + 60
    try:
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError("webhook deliveries did not finish")
            await relay.run_once()
            await sender.run_once()
            await asyncio.sleep(0.01)
    finally:
        await asyncio.to_thread(relay.release_lease)


def _deliveries(db: Database, sub: WebhookSubscription) -> list[WebhookDelivery]:
    with db.reader() as s:
        return list(
            s.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == sub.id)
                .order_by(WebhookDelivery.event_seq)
            )
        )


def test_deliveries_are_signed_in_order_and_only_of_the_subscribed_types(
    db: Database, receiver: Receiver
) -> None:
    sub, secret = _subscribe(db, f"{receiver.url}/ordered", ["test.price_tagged"])
    for n in range(5):
        _tag(db, f"ordered-{n}")
    with db.writer() as s, s.begin():
        record_event(s, ShelfCounted(shelf="x", n=1), aggregate_type="shelf", aggregate_id="x")

    async def run() -> None:
        sender = WebhookSender(db.writer, FAST_RETRIES)
        await _pump(db, sender, lambda: len(receiver.bodies("/ordered")) >= 5)
        await sender.close()

    asyncio.run(run())
    got = receiver.bodies("/ordered")
    docs = [json.loads(r.body) for r in got]
    assert [d["payload"]["tag"] for d in docs] == [f"ordered-{n}" for n in range(5)]
    assert {d["type"] for d in docs} == {"test.price_tagged"}
    for r in got:
        assert verify_signature(
            secret, r.headers["Zhongtai-Signature"], r.body, now=int(time.time())
        )
        assert r.headers["Zhongtai-Event-Type"] == "test.price_tagged"
    assert all(d.status is DeliveryStatus.DELIVERED for d in _deliveries(db, sub))


def test_a_failing_endpoint_is_retried_until_it_recovers(db: Database, receiver: Receiver) -> None:
    receiver.failures_left["/flaky"] = 2
    sub, _ = _subscribe(db, f"{receiver.url}/flaky", ["test.price_tagged"])
    _tag(db, "flaky-1")

    async def run() -> None:
        sender = WebhookSender(db.writer, FAST_RETRIES)
        await _pump(db, sender, lambda: len(receiver.bodies("/flaky")) >= 1)
        await sender.close()

    asyncio.run(run())
    [delivery] = [d for d in _deliveries(db, sub)]
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.attempts == 3


def test_a_delivery_dies_after_the_last_attempt_and_a_redrive_sends_it_again(
    db: Database, receiver: Receiver
) -> None:
    receiver.failures_left["/down"] = FAST_RETRIES.webhook_max_attempts
    sub, _ = _subscribe(db, f"{receiver.url}/down", ["test.price_tagged"])
    _tag(db, "down-1")

    def dead() -> bool:
        return [d.status for d in _deliveries(db, sub)] == [DeliveryStatus.DEAD]

    async def until(done: Callable[[], bool]) -> None:
        sender = WebhookSender(db.writer, FAST_RETRIES)
        await _pump(db, sender, done)
        await sender.close()

    asyncio.run(until(dead))
    [delivery] = _deliveries(db, sub)
    assert delivery.attempts == FAST_RETRIES.webhook_max_attempts
    assert delivery.last_status_code == 500
    assert receiver.bodies("/down") == []
    with db.writer() as s, s.begin():
        assert webhooks.redrive_dead(s, sub.id) == 1
    asyncio.run(until(lambda: len(receiver.bodies("/down")) == 1))
    [delivery] = _deliveries(db, sub)
    assert delivery.status is DeliveryStatus.DELIVERED


def test_a_stalled_endpoint_does_not_hold_up_other_subscriptions(
    db: Database, receiver: Receiver
) -> None:
    receiver.stalled.add("/stalled")
    stalled, _ = _subscribe(db, f"{receiver.url}/stalled", ["test.price_tagged"])
    _subscribe(db, f"{receiver.url}/healthy", ["test.price_tagged"])
    for n in range(3):
        _tag(db, f"both-{n}", aggregate="B")

    async def run() -> None:
        sender = WebhookSender(db.writer, FAST_RETRIES)
        await _pump(db, sender, lambda: len(receiver.bodies("/healthy")) >= 3)
        # The stalled endpoint still holds its first request; none of its events arrived.
        assert receiver.bodies("/stalled") == []
        receiver.release.set()
        await _pump(db, sender, lambda: len(receiver.bodies("/stalled")) >= 3)
        await sender.close()

    asyncio.run(run())
    tags = [json.loads(r.body)["payload"]["tag"] for r in receiver.bodies("/stalled")]
    assert tags == ["both-0", "both-1", "both-2"]
    assert [d.status for d in _deliveries(db, stalled)] == [DeliveryStatus.DELIVERED] * 3
