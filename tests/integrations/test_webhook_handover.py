"""Each real attempt is counted exactly once: a delivery in flight when the relay's lease passes
to another process is neither sent again nor counted again by the new leader; an outcome written
twice counts once; an attempt whose sender stopped counts, and its late report changes nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.integrations.relaying import relay_and_send
from tests.integrations.tag_receiver import TagReceiver
from tests.integrations.tag_subscriptions import SEALER, receiving_tags, subscribe, tag_price
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.integrations.models import (
    DeliveryStatus,
    RelayLease,
    WebhookDelivery,
    WebhookSubscription,
)
from zhongtai.integrations.relay import Relay
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhook_attempts import NEVER_REPORTED, AttemptOutcome
from zhongtai.integrations.webhook_sender import WebhookSender

SETTINGS = EventSettings(
    webhook_backoff_base_seconds=0.01,
    webhook_backoff_cap_seconds=0.05,
    webhook_max_attempts=10,
    webhook_timeout_seconds=30,
    webhook_allow_private_targets=True,  # the receiver is on loopback
)


@pytest.fixture
def receiver(db: Database) -> Iterator[TagReceiver]:
    with receiving_tags(db) as r:
        yield r


def _delivery(db: Database, sub: WebhookSubscription) -> WebhookDelivery:
    with db.reader() as s:
        return s.scalars(
            select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
        ).one()


async def _until(condition: Callable[[], bool], what: str, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.01)


def test_a_delivery_in_flight_when_the_lease_passes_is_attempted_and_counted_once(
    db: Database, receiver: TagReceiver
) -> None:
    receiver.stalled.add("H-0")
    receiver.failures_left["H-0"] = 1
    sub = subscribe(db, receiver.url)
    tag_price(db, "H", "H-0")
    old = Relay(db.writer, holder="relay-old", lease_seconds=60)
    new = Relay(db.writer, holder="relay-new", lease_seconds=60)

    async def run() -> None:
        old_sender = WebhookSender(db.writer, SETTINGS, sealer=SEALER)
        new_sender = WebhookSender(db.writer, SETTINGS, sealer=SEALER)
        try:
            await handover(old_sender, new_sender)
        finally:
            receiver.release.set()
            await old_sender.close()
            await new_sender.close()
            await asyncio.to_thread(old.release_lease)
            await asyncio.to_thread(new.release_lease)

    async def handover(old_sender: WebhookSender, new_sender: WebhookSender) -> None:
        assert await old.run_once() == 1
        assert await old_sender.run_once() == 1
        await _until(lambda: receiver.requests("H-0") == 1, "the old leader's attempt")
        # The old leader's lease runs out while its attempt still waits for an answer.
        with db.writer() as s, s.begin():
            s.execute(update(RelayLease).values(expires_at=utcnow() - timedelta(seconds=1)))
        await new.run_once()
        assert new.leading
        for _ in range(5):
            assert await new_sender.run_once() == 0
            await asyncio.sleep(0.02)
        assert receiver.requests("H-0") == 1
        # The old leader hears its answer (a 500) and records it, leading or not.
        receiver.release.set()
        await old_sender.close()
        failed = _delivery(db, sub)
        assert (failed.status, failed.attempts, failed.last_status_code) == (
            DeliveryStatus.PENDING,
            1,
            500,
        )
        # The new leader retries it: the second real attempt, counted as the second.
        await _until_sent(new_sender, lambda: receiver.tags("H") == ["H-0"])

    async def _until_sent(sender: WebhookSender, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline, "the retry did not arrive"
            await sender.run_once()
            await asyncio.sleep(0.01)

    asyncio.run(run())
    delivered = _delivery(db, sub)
    assert delivered.status is DeliveryStatus.DELIVERED
    assert delivered.attempts == receiver.requests("H-0") == 2


class LosesTheCommitsAnswer(WebhookSender):
    """The database commits the first outcomes it is sent, but the answer never comes back."""

    lost = 0

    def _record(self, outcomes: list[AttemptOutcome]) -> None:
        super()._record(outcomes)
        if not self.lost:
            self.lost += 1
            raise ConnectionError("server closed the connection unexpectedly")


def test_an_outcome_written_twice_is_counted_once(db: Database, receiver: TagReceiver) -> None:
    receiver.failures_left["W-0"] = 1
    sub = subscribe(db, receiver.url)
    tag_price(db, "W", "W-0")

    async def run() -> None:
        sender = LosesTheCommitsAnswer(db.writer, SETTINGS, sealer=SEALER)
        passes = 0

        async def one_pass() -> None:
            nonlocal passes
            passes += 1
            try:
                await sender.run_once()
            except ConnectionError:
                assert sender.lost == 1  # the outcome is kept and written again next pass

        relay = Relay(db.writer)
        await relay.run_once()
        deadline = time.monotonic() + 30
        while receiver.tags("W") != ["W-0"]:
            assert time.monotonic() < deadline, "the delivery did not arrive"
            await one_pass()
            await asyncio.sleep(0.01)
        await sender.close()
        await asyncio.to_thread(relay.release_lease)
        assert sender.lost == 1

    asyncio.run(run())
    delivered = _delivery(db, sub)
    assert delivered.status is DeliveryStatus.DELIVERED
    assert delivered.attempts == receiver.requests("W-0") == 2


def test_an_attempt_whose_sender_stopped_counts_and_its_late_report_changes_nothing(
    db: Database, receiver: TagReceiver
) -> None:
    receiver.stalled.add("L-0")
    sub = subscribe(db, receiver.url)
    tag_price(db, "L", "L-0")

    async def run() -> None:
        stopped = WebhookSender(db.writer, SETTINGS, sealer=SEALER)
        relay = Relay(db.writer)
        await relay.run_once()
        await asyncio.to_thread(relay.release_lease)
        assert await stopped.run_once() == 1
        await _until(lambda: receiver.requests("L-0") == 1, "the first attempt")
        # Its sender went silent for longer than an attempt may last: the delivery is free again.
        with db.writer() as s, s.begin():
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == sub.id)
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
        receiver.stalled.discard("L-0")
        successor = WebhookSender(db.writer, SETTINGS, sealer=SEALER)
        await relay_and_send(db, successor, lambda: receiver.tags("L") == ["L-0"])
        await successor.close()
        # The first attempt's answer comes at last (a 500): too late to change anything.
        receiver.failures_left["L-0"] = 1
        receiver.release.set()
        await stopped.close()

    asyncio.run(run())
    delivery = _delivery(db, sub)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.last_error is None
    assert delivery.attempts == receiver.requests("L-0") == 2


def test_a_lost_last_attempt_ends_the_delivery_dead_unless_it_reports_success_later(
    db: Database, receiver: TagReceiver
) -> None:
    receiver.stalled.add("Z-0")
    sub = subscribe(db, receiver.url)
    tag_price(db, "Z", "Z-0")
    one_attempt = SETTINGS.model_copy(update={"webhook_max_attempts": 1})

    async def run() -> None:
        stopped = WebhookSender(db.writer, one_attempt, sealer=SEALER)
        relay = Relay(db.writer)
        await relay.run_once()
        await asyncio.to_thread(relay.release_lease)
        assert await stopped.run_once() == 1
        await _until(lambda: receiver.requests("Z-0") == 1, "the only attempt")
        with db.writer() as s, s.begin():
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == sub.id)
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
        successor = WebhookSender(db.writer, one_attempt, sealer=SEALER)
        await relay_and_send(
            db, successor, lambda: _delivery(db, sub).status is DeliveryStatus.DEAD
        )
        await successor.close()
        dead = _delivery(db, sub)
        assert (dead.attempts, dead.last_error) == (1, NEVER_REPORTED)
        assert receiver.requests("Z-0") == 1, "no attempt was left to make"
        # Its answer comes at last, a 2xx: it got through after all, and says so.
        receiver.release.set()
        await stopped.close()

    asyncio.run(run())
    delivered = _delivery(db, sub)
    assert delivered.status is DeliveryStatus.DELIVERED
    assert (delivered.attempts, delivered.last_error) == (1, None)
    assert receiver.tags("Z") == ["Z-0"]
