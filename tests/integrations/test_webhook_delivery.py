"""Webhooks reach a real loopback receiver: signed, in order, retried, dead-lettered, re-driven,
timed out, and a stalled endpoint never holds up the others; an internal target, or a secret
that does not open, fails the attempt with a clear error and nothing is sent."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from sqlalchemy import select

from tests.integrations.events import PriceTagged, ShelfCounted
from tests.integrations.rebinding import EverythingIsLoopback
from tests.integrations.receiver import Receiver
from tests.integrations.relaying import relay_and_send
from zhongtai.core.db import Database
from zhongtai.core.outbox import record_event
from zhongtai.core.settings import Settings
from zhongtai.integrations import webhooks
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.rules import verify_signature
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.targets import TargetGuard
from zhongtai.integrations.webhook_sender import WebhookSender

# The receiver is on loopback, an internal address: these tests allow private targets.
FAST_RETRIES = EventSettings(
    webhook_backoff_base_seconds=0.01,
    webhook_backoff_cap_seconds=0.05,
    webhook_max_attempts=3,
    webhook_timeout_seconds=10,
    webhook_allow_private_targets=True,
)
SEALER = webhooks.webhook_secrets(
    Settings(secret_key="webhook-delivery-tests-0123456789abcdef")  # type: ignore[arg-type]
)
LOOPBACK_ALLOWED = TargetGuard(allow_private=True)


def _subscribe(db: Database, url: str, types: list[str]) -> tuple[WebhookSubscription, str]:
    with db.writer() as s, s.begin():
        sub, secret = webhooks.create_subscription(
            s, url=url, event_types=types, guard=LOOPBACK_ALLOWED, sealer=SEALER
        )
    return sub, secret


def _tag(db: Database, tag: str, aggregate: str = "T") -> None:
    with db.writer() as s, s.begin():
        record_event(s, PriceTagged(tag=tag), aggregate_type="tag", aggregate_id=aggregate)


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
        sender = WebhookSender(db.writer, FAST_RETRIES, sealer=SEALER)
        await relay_and_send(db, sender, lambda: len(receiver.bodies("/ordered")) >= 5)
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
        sender = WebhookSender(db.writer, FAST_RETRIES, sealer=SEALER)
        await relay_and_send(db, sender, lambda: len(receiver.bodies("/flaky")) >= 1)
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
        sender = WebhookSender(db.writer, FAST_RETRIES, sealer=SEALER)
        await relay_and_send(db, sender, done)
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
        sender = WebhookSender(db.writer, FAST_RETRIES, sealer=SEALER)
        await relay_and_send(db, sender, lambda: len(receiver.bodies("/healthy")) >= 3)
        # The stalled endpoint still holds its first request; none of its events arrived.
        assert receiver.bodies("/stalled") == []
        receiver.release.set()
        await relay_and_send(db, sender, lambda: len(receiver.bodies("/stalled")) >= 3)
        await sender.close()

    asyncio.run(run())
    tags = [json.loads(r.body)["payload"]["tag"] for r in receiver.bodies("/stalled")]
    assert tags == ["both-0", "both-1", "both-2"]
    assert [d.status for d in _deliveries(db, stalled)] == [DeliveryStatus.DELIVERED] * 3


GUARDED = FAST_RETRIES.model_copy(update={"webhook_allow_private_targets": False})


def _until_dead(db: Database, sub: WebhookSubscription, sender: WebhookSender) -> None:
    def dead() -> bool:
        return [d.status for d in _deliveries(db, sub)] == [DeliveryStatus.DEAD]

    async def run() -> None:
        await relay_and_send(db, sender, dead)
        await sender.close()

    asyncio.run(run())


def test_an_address_written_in_the_url_is_checked_again_when_sent(
    db: Database, receiver: Receiver
) -> None:
    sub, _ = _subscribe(db, f"{receiver.url}/literal", ["test.price_tagged"])
    _tag(db, "literal-1")
    _until_dead(db, sub, WebhookSender(db.writer, GUARDED, sealer=SEALER))
    [delivery] = _deliveries(db, sub)
    assert delivery.last_error is not None
    assert "127.0.0.1 is a loopback address" in delivery.last_error
    assert "ZHONGTAI_WEBHOOK_ALLOW_PRIVATE_TARGETS" in delivery.last_error
    assert delivery.last_status_code is None
    assert receiver.bodies("/literal") == []


def test_a_name_that_came_to_resolve_to_an_internal_address_is_refused_when_sent(
    db: Database, receiver: Receiver
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    url = f"http://hooks.example.test:{port}/renamed"
    # When subscribed, the name was public (no request goes anywhere at subscription time).
    public_then = TargetGuard(resolve=lambda host, port: ["93.184.215.14"])
    with db.writer() as s, s.begin():
        sub, _ = webhooks.create_subscription(
            s, url=url, event_types=["test.price_tagged"], guard=public_then, sealer=SEALER
        )
    _tag(db, "renamed-1")
    _until_dead(
        db, sub, WebhookSender(db.writer, GUARDED, sealer=SEALER, resolver=EverythingIsLoopback())
    )
    [delivery] = _deliveries(db, sub)
    assert delivery.last_error is not None
    assert "hooks.example.test resolves to 127.0.0.1 is a loopback address" in delivery.last_error
    assert receiver.bodies("/renamed") == []

    # The same resolver with private targets allowed reaches the receiver: the refusal above
    # came from the guard, not from a lookup that failed.
    with db.writer() as s, s.begin():
        assert webhooks.redrive_dead(s, sub.id) == 1
    allowed = WebhookSender(db.writer, FAST_RETRIES, sealer=SEALER, resolver=EverythingIsLoopback())

    async def run() -> None:
        await relay_and_send(db, allowed, lambda: len(receiver.bodies("/renamed")) == 1)
        await allowed.close()

    asyncio.run(run())
    assert [d.status for d in _deliveries(db, sub)] == [DeliveryStatus.DELIVERED]


def test_an_answer_slower_than_the_timeout_is_a_failed_attempt_then_retried(
    db: Database, receiver: Receiver
) -> None:
    receiver.stalled.add("/slow")
    sub, _ = _subscribe(db, f"{receiver.url}/slow", ["test.price_tagged"])
    _tag(db, "slow-1")
    impatient = FAST_RETRIES.model_copy(
        update={"webhook_timeout_seconds": 0.3, "webhook_max_attempts": 1000}
    )

    def timed_out() -> bool:
        return any("no answer within 0.3s" in (d.last_error or "") for d in _deliveries(db, sub))

    async def run() -> None:
        sender = WebhookSender(db.writer, impatient, sealer=SEALER)
        await relay_and_send(db, sender, timed_out)
        receiver.release.set()
        await relay_and_send(
            db,
            sender,
            lambda: [d.status for d in _deliveries(db, sub)] == [DeliveryStatus.DELIVERED],
        )
        await sender.close()

    asyncio.run(run())
    [delivery] = _deliveries(db, sub)
    assert delivery.attempts >= 2
    assert [json.loads(r.body)["payload"]["tag"] for r in receiver.bodies("/slow")][-1] == "slow-1"


def test_a_secret_sealed_under_another_key_is_not_sent_unsigned(
    db: Database, receiver: Receiver
) -> None:
    sub, _ = _subscribe(db, f"{receiver.url}/rekeyed", ["test.price_tagged"])
    _tag(db, "rekeyed-1")
    other_key = webhooks.webhook_secrets(
        Settings(secret_key="a-rotated-secret-key-0123456789abcdef")  # type: ignore[arg-type]
    )
    _until_dead(db, sub, WebhookSender(db.writer, FAST_RETRIES, sealer=other_key))
    [delivery] = _deliveries(db, sub)
    assert delivery.last_error is not None
    assert "does not open with this ZHONGTAI_SECRET_KEY" in delivery.last_error
    assert receiver.bodies("/rekeyed") == []
