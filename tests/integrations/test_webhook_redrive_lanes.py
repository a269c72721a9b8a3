"""Re-driving a dead lane head never opens a second request of its lane: while the lane's next
delivery is in flight the re-driven one waits, then goes; and however many senders claim at once
(an old and a new relay leader, say) while operators re-drive, each lane has one request open at
a time and each delivery is sent once."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from tests.integrations.relaying import publish_all, relay_and_send
from tests.integrations.tag_receiver import TagReceiver
from tests.integrations.tag_subscriptions import SEALER, receiving_tags, subscribe, tag_price
from zhongtai.core.db import Database
from zhongtai.integrations import webhooks
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhook_attempts import claim_deliveries
from zhongtai.integrations.webhook_queue import DueDelivery, due_deliveries
from zhongtai.integrations.webhook_sender import WebhookSender

SETTINGS = EventSettings(
    webhook_backoff_base_seconds=0.01,
    webhook_backoff_cap_seconds=0.05,
    webhook_max_attempts=1,
    webhook_timeout_seconds=30,
    webhook_lanes_per_subscription=8,
    webhook_allow_private_targets=True,  # the receiver is on loopback
)


@pytest.fixture
def receiver(db: Database) -> Iterator[TagReceiver]:
    with receiving_tags(db) as r:
        yield r


def _deliveries(db: Database, sub: WebhookSubscription) -> list[WebhookDelivery]:
    with db.reader() as s:
        return list(
            s.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == sub.id)
                .order_by(WebhookDelivery.event_seq)
            )
        )


def test_a_redriven_dead_head_waits_while_the_next_delivery_of_its_lane_is_in_flight(
    db: Database, receiver: TagReceiver
) -> None:
    receiver.failures_left["R-0"] = 1
    sub = subscribe(db, receiver.url)
    tag_price(db, "R", "R-0")

    async def run() -> None:
        sender = WebhookSender(db.writer, SETTINGS, sealer=SEALER)
        await relay_and_send(
            db, sender, lambda: [d.status for d in _deliveries(db, sub)] == [DeliveryStatus.DEAD]
        )
        [dead] = _deliveries(db, sub)
        # The lane's next event goes out and is held open by the receiver.
        receiver.stalled.add("R-1")
        tag_price(db, "R", "R-1")
        await relay_and_send(db, sender, lambda: receiver.requests("R-1") == 1)
        with db.writer() as s, s.begin():
            webhooks.redrive_delivery(s, dead.id)
        # The re-driven head is its lane's oldest pending delivery, but R-1 is still open.
        for _ in range(5):
            assert await sender.run_once() == 0
            await asyncio.sleep(0.02)
        assert receiver.requests("R-0") == 1  # the attempt that killed it, no other
        receiver.release.set()
        await relay_and_send(db, sender, lambda: len(receiver.tags("R")) == 2)
        await sender.close()

    asyncio.run(run())
    assert receiver.tags("R") == ["R-1", "R-0"]
    assert receiver.most_open_in_one_lane() == 1
    assert [d.status for d in _deliveries(db, sub)] == [DeliveryStatus.DELIVERED] * 2


@pytest.mark.postgres_only
def test_concurrent_senders_and_redrives_never_open_two_requests_of_one_lane(
    db: Database, receiver: TagReceiver
) -> None:
    receiver.delay_s = 0.03
    sub = subscribe(db, receiver.url)
    lanes = [f"C{n}" for n in range(12)]
    for n in range(3):
        for lane in lanes:
            tag_price(db, lane, f"{lane}-{n}")
    publish_all(db)
    # Each lane's first delivery died before the senders start; operators re-drive them while
    # four senders claim at once.
    first: dict[str, uuid.UUID] = {}
    for delivery in _deliveries(db, sub):
        first.setdefault(delivery.aggregate_id, delivery.id)
    with db.writer() as s, s.begin():
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(first.values())))
            .values(status=DeliveryStatus.DEAD, attempts=1, last_error="HTTP 500: down")
        )
    settings = SETTINGS.model_copy(update={"webhook_max_attempts": 100})
    total = 3 * len(lanes)
    start = threading.Barrier(5)
    deadline = time.monotonic() + 90
    errors: list[BaseException] = []

    def sending() -> None:
        async def loop() -> None:
            sender = WebhookSender(db.writer, settings, sealer=SEALER)
            try:
                while len(receiver.arrived) < total and time.monotonic() < deadline:
                    await sender.run_once()
                    await asyncio.sleep(0.002)
            finally:
                await sender.close()

        try:
            start.wait()
            asyncio.run(loop())
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    def redriving() -> None:
        try:
            start.wait()
            for delivery_id in random.sample(list(first.values()), len(first)):
                time.sleep(random.uniform(0, 0.04))
                with db.writer() as s, s.begin():
                    webhooks.redrive_delivery(s, delivery_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sending) for _ in range(4)]
    threads.append(threading.Thread(target=redriving))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert receiver.most_open_in_one_lane() == 1
    for lane in lanes:
        tags = receiver.tags(lane)
        assert sorted(tags) == [f"{lane}-0", f"{lane}-1", f"{lane}-2"], "each sent once"
        assert tags.index(f"{lane}-1") < tags.index(f"{lane}-2")
    assert len(receiver.arrived) == total
    deliveries = _deliveries(db, sub)
    assert {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}
    assert {d.attempts for d in deliveries} == {1}


@pytest.mark.postgres_only
def test_a_claim_of_a_redriven_head_waits_for_a_concurrent_claim_of_its_lane(
    db: Database, receiver: TagReceiver
) -> None:
    sub = subscribe(db, receiver.url)
    tag_price(db, "X", "X-0")
    tag_price(db, "X", "X-1")
    publish_all(db)
    head, following = _deliveries(db, sub)
    with db.writer() as s, s.begin():
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == head.id)
            .values(status=DeliveryStatus.DEAD, attempts=1)
        )

    def candidates() -> list[DueDelivery]:
        with db.reader() as s:
            due = due_deliveries(s, in_flight={}, per_subscription=8, limit=100)
        return [d for d in due if d.subscription_id == sub.id]

    def claim(session_candidates: list[DueDelivery]) -> list[DueDelivery]:
        with db.writer() as s, s.begin():
            return claim_deliveries(s, session_candidates, max_attempts=10, claim_seconds=60)

    [stale] = candidates()
    assert stale.delivery_id == following.id
    second: list[list[DueDelivery]] = []
    with db.writer() as s, s.begin():
        # One sender claims X-1 (X-0 is dead) and has not committed yet...
        assert [
            c.delivery_id for c in claim_deliveries(s, [stale], max_attempts=10, claim_seconds=60)
        ] == [following.id]
        # ...when an operator re-drives X-0, and another sender finds it its lane's head.
        with db.writer() as r, r.begin():
            webhooks.redrive_delivery(r, head.id)
        [redriven] = candidates()
        assert redriven.delivery_id == head.id
        other = threading.Thread(target=lambda: second.append(claim([redriven])))
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive(), "the second claim waits for the first one's transaction"
    other.join(timeout=30)
    assert second == [[]], "X-1 is in flight: X-0 waits"
    with db.reader() as s:
        claimed = s.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.subscription_id == sub.id, WebhookDelivery.claim_id.is_not(None)
            )
        ).all()
    assert claimed == [following.id]
