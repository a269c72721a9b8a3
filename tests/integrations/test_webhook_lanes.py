"""One subscription sends many aggregates at once, yet each aggregate's events arrive in order,
and a failing or stalled aggregate holds back only itself."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select, update

from tests.integrations.events import PriceTagged
from tests.integrations.receiver import QuietHandler, serving
from tests.integrations.relaying import publish_all, relay_and_send
from zhongtai.core.db import Database
from zhongtai.core.outbox import record_event
from zhongtai.core.settings import Settings
from zhongtai.integrations import webhooks
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.targets import TargetGuard
from zhongtai.integrations.webhook_queue import due_deliveries
from zhongtai.integrations.webhook_sender import WebhookSender

LANES = EventSettings(
    webhook_backoff_base_seconds=0.01,
    webhook_backoff_cap_seconds=0.05,
    webhook_max_attempts=1000,
    webhook_timeout_seconds=30,
    webhook_lanes_per_subscription=4,
    webhook_allow_private_targets=True,  # the receiver is on loopback
)
SEALER = webhooks.webhook_secrets(
    Settings(secret_key="webhook-lane-tests-0123456789abcdef")  # type: ignore[arg-type]
)


@dataclass
class LaneReceiver:
    """Records each aggregate's arrivals in order; fails or stalls chosen aggregates on demand."""

    url: str = ""
    #: (aggregate id, tag) of every 2xx answer, in the order they were answered
    arrived: list[tuple[str, str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    stalled: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    refused: int = 0
    in_handler: int = 0
    most_at_once: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tags(self, aggregate: str) -> list[str]:
        with self.lock:
            return [tag for agg, tag in self.arrived if agg == aggregate]

    def answer(self, body: bytes) -> int:
        doc = json.loads(body)
        aggregate = doc["aggregate_id"]
        with self.lock:
            self.in_handler += 1
            self.most_at_once = max(self.most_at_once, self.in_handler)
        try:
            if aggregate in self.stalled:
                self.release.wait(timeout=60)
            with self.lock:
                if aggregate in self.failing:
                    self.refused += 1
                    return 500
                self.arrived.append((aggregate, doc["payload"]["tag"]))
                return 204
        finally:
            with self.lock:
                self.in_handler -= 1


@contextmanager
def lane_receiver() -> Iterator[LaneReceiver]:
    receiver = LaneReceiver()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.answer_empty(receiver.answer(body))

    with serving(Handler) as url:
        receiver.url = f"{url}/lanes"
        try:
            yield receiver
        finally:
            receiver.release.set()


@pytest.fixture
def receiver(db: Database) -> Iterator[LaneReceiver]:
    with lane_receiver() as r:
        yield r
    # Later tests' events are not queued for this test's (gone) endpoint.
    with db.writer() as s, s.begin():
        s.execute(update(WebhookSubscription).values(active=False))


def _subscribe(db: Database, url: str) -> WebhookSubscription:
    with db.writer() as s, s.begin():
        sub, _ = webhooks.create_subscription(
            s,
            url=url,
            event_types=["test.price_tagged"],
            guard=TargetGuard(allow_private=True),
            sealer=SEALER,
        )
    return sub


def _tag(db: Database, aggregate: str, tag: str) -> None:
    with db.writer() as s, s.begin():
        record_event(s, PriceTagged(tag=tag), aggregate_type="tag", aggregate_id=aggregate)


def _interleave(db: Database, aggregates: list[str], per_aggregate: int) -> None:
    for n in range(per_aggregate):
        for aggregate in aggregates:
            _tag(db, aggregate, f"{aggregate}-{n}")


def _statuses(db: Database, sub: WebhookSubscription) -> set[DeliveryStatus]:
    with db.reader() as s:
        return set(
            s.scalars(
                select(WebhookDelivery.status).where(WebhookDelivery.subscription_id == sub.id)
            )
        )


def test_interleaved_aggregates_each_arrive_in_event_order(
    db: Database, receiver: LaneReceiver
) -> None:
    sub = _subscribe(db, receiver.url)
    _interleave(db, ["A", "B", "C"], 12)

    async def run() -> None:
        sender = WebhookSender(db.writer, LANES, sealer=SEALER)
        await relay_and_send(db, sender, lambda: len(receiver.arrived) >= 36)
        await sender.close()

    asyncio.run(run())
    for aggregate in ("A", "B", "C"):
        assert receiver.tags(aggregate) == [f"{aggregate}-{n}" for n in range(12)]
    assert _statuses(db, sub) == {DeliveryStatus.DELIVERED}


def test_a_stalled_aggregate_holds_back_only_itself_and_then_arrives_in_order(
    db: Database, receiver: LaneReceiver
) -> None:
    receiver.stalled.add("slow")
    _subscribe(db, receiver.url)
    _interleave(db, ["slow", "quick"], 5)

    async def run() -> None:
        sender = WebhookSender(db.writer, LANES, sealer=SEALER)
        # Every event of "quick" arrives while the first of "slow" is still being answered.
        await relay_and_send(db, sender, lambda: len(receiver.tags("quick")) >= 5)
        assert receiver.tags("slow") == []
        receiver.release.set()
        await relay_and_send(db, sender, lambda: len(receiver.tags("slow")) >= 5)
        await sender.close()

    asyncio.run(run())
    assert receiver.tags("quick") == [f"quick-{n}" for n in range(5)]
    assert receiver.tags("slow") == [f"slow-{n}" for n in range(5)]


def test_a_failing_head_blocks_only_its_aggregate_until_its_retry_succeeds(
    db: Database, receiver: LaneReceiver
) -> None:
    receiver.failing.add("broken")
    _subscribe(db, receiver.url)
    _interleave(db, ["broken", "fine"], 6)

    async def run() -> None:
        sender = WebhookSender(db.writer, LANES, sealer=SEALER)
        # "fine" flows while the head of "broken" is refused and retried, again and again.
        await relay_and_send(
            db, sender, lambda: len(receiver.tags("fine")) >= 6 and receiver.refused >= 3
        )
        assert receiver.tags("broken") == []
        with receiver.lock:
            receiver.failing.clear()
        await relay_and_send(db, sender, lambda: len(receiver.tags("broken")) >= 6)
        await sender.close()

    asyncio.run(run())
    assert receiver.tags("broken") == [f"broken-{n}" for n in range(6)]
    assert receiver.tags("fine") == [f"fine-{n}" for n in range(6)]


def test_a_dead_head_frees_its_aggregate_and_a_redrive_sends_it_later(
    db: Database, receiver: LaneReceiver
) -> None:
    receiver.failing.add("D")
    sub = _subscribe(db, receiver.url)
    _tag(db, "D", "D-0")
    settings = LANES.model_copy(update={"webhook_max_attempts": 2})

    async def run(done: Callable[[], bool]) -> None:
        sender = WebhookSender(db.writer, settings, sealer=SEALER)
        await relay_and_send(db, sender, done)
        await sender.close()

    asyncio.run(run(lambda: _statuses(db, sub) == {DeliveryStatus.DEAD}))
    with receiver.lock:
        receiver.failing.clear()
    _tag(db, "D", "D-1")
    asyncio.run(run(lambda: receiver.tags("D") == ["D-1"]))
    with db.writer() as s, s.begin():
        assert webhooks.redrive_dead(s, sub.id) == 1
    asyncio.run(run(lambda: len(receiver.tags("D")) == 2))
    assert receiver.tags("D") == ["D-1", "D-0"]
    assert _statuses(db, sub) == {DeliveryStatus.DELIVERED}


def test_a_subscription_never_has_more_requests_open_than_its_lanes(
    db: Database, receiver: LaneReceiver
) -> None:
    aggregates = [f"L{n}" for n in range(10)]
    receiver.stalled.update(aggregates)
    _subscribe(db, receiver.url)
    _interleave(db, aggregates, 2)

    async def run() -> None:
        sender = WebhookSender(db.writer, LANES, sealer=SEALER)
        await relay_and_send(
            db, sender, lambda: receiver.in_handler >= LANES.webhook_lanes_per_subscription
        )
        # All lanes are busy: another pass starts nothing.
        assert await sender.run_once() == 0
        receiver.release.set()
        await relay_and_send(db, sender, lambda: len(receiver.arrived) >= 20)
        await sender.close()

    asyncio.run(run())
    assert receiver.most_at_once <= LANES.webhook_lanes_per_subscription
    for aggregate in aggregates:
        assert receiver.tags(aggregate) == [f"{aggregate}-0", f"{aggregate}-1"]


def test_only_lane_heads_are_due_and_in_flight_ones_still_hold_their_lanes(
    db: Database, receiver: LaneReceiver
) -> None:
    sub = _subscribe(db, receiver.url)
    _interleave(db, ["H1", "H2", "H3"], 2)
    publish_all(db)

    def due(in_flight: dict, per_subscription: int = 16) -> list[str]:  # type: ignore[type-arg]
        with db.reader() as s:
            picked = due_deliveries(
                s, in_flight=in_flight, per_subscription=per_subscription, limit=100
            )
        return [d.event.payload["tag"] for d in picked if d.subscription_id == sub.id]

    assert due({}) == ["H1-0", "H2-0", "H3-0"]
    with db.reader() as s:
        first = s.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.subscription_id == sub.id)
            .order_by(WebhookDelivery.event_seq)
            .limit(1)
        ).one()
    assert due({first: sub.id}) == ["H2-0", "H3-0"]
    assert due({first: sub.id}, per_subscription=2) == ["H2-0"]
