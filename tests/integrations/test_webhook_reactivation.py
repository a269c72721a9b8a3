"""A deactivated subscription's deliveries end (cancelled) instead of waiting forever; once
reactivated it receives only the events published from then on, and its cancelled deliveries go
out again only when an operator re-drives them, in order. A delivery in flight when its
subscription is deactivated ends as its attempt did: delivered if it was answered 2xx, else
cancelled; it holds its lane until then. Cancelled deliveries are pruned once cancelled for
longer than the retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.integrations.relaying import publish_all, relay_and_send
from tests.integrations.tag_receiver import TagReceiver
from tests.integrations.tag_subscriptions import SEALER, receiving_tags, subscribe, tag_price
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations import webhooks
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.relay import Relay, prune_history
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhook_sender import WebhookSender

SETTINGS = EventSettings(
    webhook_backoff_base_seconds=0.01,
    webhook_backoff_cap_seconds=0.05,
    webhook_max_attempts=5,
    webhook_timeout_seconds=30,
    webhook_allow_private_targets=True,  # the receiver is on loopback
)


@pytest.fixture
def receiver(db: Database) -> Iterator[TagReceiver]:
    with receiving_tags(db) as r:
        yield r


def _by_tag(db: Database, sub: WebhookSubscription) -> dict[str, WebhookDelivery]:
    with db.reader() as s:
        rows = s.execute(
            select(WebhookDelivery, OutboxEvent.payload)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.subscription_id == sub.id)
        ).all()
    return {payload["tag"]: delivery for delivery, payload in rows}


def _deactivate(db: Database, sub: WebhookSubscription) -> int:
    with db.writer() as s, s.begin():
        return webhooks.deactivate_subscription(s, sub.id).cancelled


def _reactivate(db: Database, sub: WebhookSubscription) -> None:
    with db.writer() as s, s.begin():
        webhooks.reactivate_subscription(s, sub.id)


def _send(db: Database, done: Callable[[], bool]) -> None:
    async def run() -> None:
        sender = WebhookSender(db.writer, SETTINGS, sealer=SEALER)
        await relay_and_send(db, sender, done)
        await sender.close()

    asyncio.run(run())


async def _publish(db: Database) -> None:
    """Publish what waits in the outbox (from a running event loop), handing the lease back."""
    relay = Relay(db.writer)
    while await relay.run_once():
        pass
    await asyncio.to_thread(relay.release_lease)


def _idle_passes(db: Database, passes: int = 5) -> int:
    """Relay and sender passes; how many attempts the sender started."""

    async def run() -> int:
        sender = WebhookSender(db.writer, SETTINGS, sealer=SEALER)
        started = 0
        for _ in range(passes):
            await _publish(db)
            started += await sender.run_once()
            await asyncio.sleep(0.01)
        await sender.close()
        return started

    return asyncio.run(run())


def test_a_reactivated_subscription_gets_only_new_events_and_its_cancelled_ones_on_redrive(
    db: Database, receiver: TagReceiver
) -> None:
    sub = subscribe(db, receiver.url)
    tag_price(db, "A", "A-0")
    tag_price(db, "A", "A-1")
    publish_all(db)
    assert _deactivate(db, sub) == 2
    statuses = {tag: d.status for tag, d in _by_tag(db, sub).items()}
    assert statuses == {"A-0": DeliveryStatus.CANCELLED, "A-1": DeliveryStatus.CANCELLED}

    tag_price(db, "A", "A-during")  # published while inactive: never queued for it
    assert _idle_passes(db) == 0
    _reactivate(db, sub)
    tag_price(db, "A", "A-after")
    _send(db, lambda: receiver.tags("A") == ["A-after"])
    assert receiver.started == ["A-after"]
    assert set(_by_tag(db, sub)) == {"A-0", "A-1", "A-after"}

    with db.writer() as s, s.begin():
        assert webhooks.redrive_all(s, sub.id, DeliveryStatus.CANCELLED) == 2
    _send(db, lambda: len(receiver.tags("A")) == 3)
    assert receiver.tags("A") == ["A-after", "A-0", "A-1"]
    assert {d.status for d in _by_tag(db, sub).values()} == {DeliveryStatus.DELIVERED}


def test_a_delivery_in_flight_at_deactivation_ends_as_its_attempt_did(
    db: Database, receiver: TagReceiver
) -> None:
    receiver.stalled.update({"ok-0", "bad-0"})
    receiver.failures_left["bad-0"] = 1
    sub = subscribe(db, receiver.url)
    tag_price(db, "ok", "ok-0")
    tag_price(db, "bad", "bad-0")
    tag_price(db, "ok", "ok-1")  # waits behind ok-0 in its lane

    async def run() -> None:
        sender = WebhookSender(db.writer, SETTINGS, sealer=SEALER)
        await relay_and_send(
            db, sender, lambda: receiver.requests("ok-0") + receiver.requests("bad-0") == 2
        )
        assert _deactivate(db, sub) == 3
        # Reactivated at once: the lane whose request is still open sends nothing meanwhile.
        _reactivate(db, sub)
        tag_price(db, "ok", "ok-2")
        await _publish(db)
        for _ in range(5):
            assert await sender.run_once() == 0
            await asyncio.sleep(0.02)
        receiver.release.set()
        await _until(lambda: receiver.tags("ok") == ["ok-0"])
        await relay_and_send(db, sender, lambda: receiver.tags("ok") == ["ok-0", "ok-2"])
        await sender.close()

    asyncio.run(run())
    ended = _by_tag(db, sub)
    assert ended["ok-0"].status is DeliveryStatus.DELIVERED
    assert ended["ok-0"].cancel_reason is None
    assert (ended["bad-0"].status, ended["bad-0"].last_status_code) == (
        DeliveryStatus.CANCELLED,
        500,
    )
    assert ended["bad-0"].cancel_reason == "the subscription was deactivated"
    assert ended["ok-1"].status is DeliveryStatus.CANCELLED
    assert ended["ok-2"].status is DeliveryStatus.DELIVERED
    assert receiver.requests("bad-0") == 1
    assert receiver.most_open_in_one_lane() == 1


async def _until(condition: Callable[[], bool], limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.01)


def test_cancelled_deliveries_are_pruned_once_cancelled_longer_than_the_retention(
    db: Database, receiver: TagReceiver
) -> None:
    sub = subscribe(db, receiver.url)
    for tag in ("P-0", "Q-0", "R-0"):
        tag_price(db, tag[0], tag)
    publish_all(db)
    deliveries = _by_tag(db, sub)
    with db.writer() as s, s.begin():
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == deliveries["Q-0"].id)
            .values(status=DeliveryStatus.DEAD)
        )
    assert _deactivate(db, sub) == 2
    then = utcnow() - timedelta(days=40)
    with db.writer() as s, s.begin():
        s.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_([d.event_id for d in deliveries.values()]))
            .values(published_at=then)
        )
        # R-0 was cancelled long ago; P-0 just now, however old its event.
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == deliveries["R-0"].id)
            .values(updated_at=then)
        )
    tag_price(db, "N", "N-newest")  # the newest event always stays: let it be another one
    publish_all(db)
    prune_history(db.writer, before=utcnow() - timedelta(days=30))
    left = _by_tag(db, sub)
    assert set(left) == {"P-0", "Q-0"}
    assert left["P-0"].status is DeliveryStatus.CANCELLED
    assert left["Q-0"].status is DeliveryStatus.DEAD
    with db.reader() as s:
        kept = set(s.scalars(select(OutboxEvent.id)))
    assert deliveries["R-0"].event_id not in kept
    assert {deliveries["P-0"].event_id, deliveries["Q-0"].event_id} <= kept
