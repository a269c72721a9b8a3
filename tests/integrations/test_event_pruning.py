"""Old published events and delivered webhook deliveries are pruned, by `zhongtai events prune`
and by the leading relay; an unpublished event, a pending or dead delivery (and the event it
still has to send), and the newest event (numbering carries on from it) always stay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests import migrated
from tests.integrations.events import PriceTagged, ShelfCounted
from tests.integrations.relaying import publish_all
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent, record_event
from zhongtai.core.settings import Settings, get_settings
from zhongtai.integrations import webhooks
from zhongtai.integrations.cli import events_app
from zhongtai.integrations.handlers import PublishedEvent, on_event, unregister
from zhongtai.integrations.models import (
    DeliveryStatus,
    HandledEvent,
    WebhookDelivery,
    WebhookSubscription,
)
from zhongtai.integrations.relay import Pruned, prune_history
from zhongtai.integrations.runtime import prune_periodically
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.targets import TargetGuard

LONG_AGO = timedelta(days=40)
RETENTION = timedelta(days=30)


def _subscribe(db: Database) -> WebhookSubscription:
    with db.writer() as s, s.begin():
        sub, _ = webhooks.create_subscription(
            s,
            url="http://127.0.0.1:9/never-sent",
            event_types=["test.price_tagged"],
            guard=TargetGuard(allow_private=True),
            sealer=webhooks.webhook_secrets(Settings()),
        )
    return sub


def _tag(db: Database, tag: str) -> uuid.UUID:
    with db.writer() as s, s.begin():
        event = record_event(s, PriceTagged(tag=tag), aggregate_type="tag", aggregate_id=tag)
        s.flush()
        return event.id


def _count_shelf(db: Database) -> uuid.UUID:
    with db.writer() as s, s.begin():
        event = record_event(
            s, ShelfCounted(shelf="S", n=1), aggregate_type="shelf", aggregate_id="S"
        )
        s.flush()
        return event.id


def _age(db: Database, event_ids: list[uuid.UUID]) -> None:
    """These events were published (and their deliveries made) long ago."""
    then = utcnow() - LONG_AGO
    with db.writer() as s, s.begin():
        s.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_(event_ids)).values(published_at=then)
        )
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.event_id.in_(event_ids))
            .values(created_at=then)
        )


def _settle(db: Database, event_id: uuid.UUID, status: DeliveryStatus) -> None:
    with db.writer() as s, s.begin():
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.event_id == event_id)
            .values(
                status=status, delivered_at=utcnow() if status is DeliveryStatus.DELIVERED else None
            )
        )


def _events(db: Database) -> set[uuid.UUID]:
    with db.reader() as s:
        return set(s.scalars(select(OutboxEvent.id)))


def _deliveries(db: Database) -> dict[uuid.UUID, DeliveryStatus]:
    with db.reader() as s:
        return dict(s.execute(select(WebhookDelivery.event_id, WebhookDelivery.status)).all())


def test_old_events_go_with_their_delivered_deliveries_and_nothing_still_needed_does(
    test_db: Database,
) -> None:
    _subscribe(test_db)
    delivered, pending, dead = (_tag(test_db, t) for t in ("d", "p", "x"))
    unsubscribed = _count_shelf(test_db)
    recent = _tag(test_db, "r")
    publish_all(test_db)
    for event_id, status in [
        (delivered, DeliveryStatus.DELIVERED),
        (dead, DeliveryStatus.DEAD),
        (recent, DeliveryStatus.DELIVERED),
    ]:
        _settle(test_db, event_id, status)
    _age(test_db, [delivered, pending, dead, unsubscribed])
    unpublished = _tag(test_db, "u")  # never published: no relay ran since

    # Chunks of two: the walk over the old events goes on across transactions.
    pruned = prune_history(test_db.writer, before=utcnow() - RETENTION, chunk=2)

    assert pruned == Pruned(events=2, deliveries=1)
    assert _events(test_db) == {pending, dead, recent, unpublished}
    assert _deliveries(test_db) == {
        pending: DeliveryStatus.PENDING,
        dead: DeliveryStatus.DEAD,
        recent: DeliveryStatus.DELIVERED,
    }
    assert prune_history(test_db.writer, before=utcnow() - RETENTION) == Pruned()


def test_handler_receipts_go_with_their_pruned_events_and_stay_for_events_kept(
    test_db: Database,
) -> None:
    consumer = "tests.pruning.shelf_counter"

    @on_event("test.shelf_counted", consumer=consumer)
    def count(event: PublishedEvent, session: object) -> None:
        return None

    try:
        old = [_count_shelf(test_db) for _ in range(3)]
        recent = _count_shelf(test_db)
        publish_all(test_db)
    finally:
        unregister(consumer)
    _age(test_db, old)
    with test_db.reader() as s:
        receipts = set(s.scalars(select(HandledEvent.event_id)))
    assert {*old, recent} <= receipts

    pruned = prune_history(test_db.writer, before=utcnow() - RETENTION)

    with test_db.reader() as s:
        left = set(s.scalars(select(HandledEvent.event_id)))
    assert pruned == Pruned(events=3, handled=3)
    assert not set(old) & left
    assert left == receipts - set(old)
    assert recent in left and recent in _events(test_db)


def test_the_newest_event_stays_so_that_numbering_carries_on_after_it(test_db: Database) -> None:
    old = [_count_shelf(test_db) for _ in range(3)]
    publish_all(test_db)
    _age(test_db, old)
    with test_db.reader() as s:
        last_seq, last_published = s.execute(
            select(OutboxEvent.seq, OutboxEvent.published_seq).where(OutboxEvent.id == old[-1])
        ).one()

    assert prune_history(test_db.writer, before=utcnow() - RETENTION) == Pruned(events=2)
    assert old[-1] in _events(test_db) and not {old[0], old[1]} & _events(test_db)

    later = _count_shelf(test_db)
    publish_all(test_db)
    with test_db.reader() as s:
        seq, published = s.execute(
            select(OutboxEvent.seq, OutboxEvent.published_seq).where(OutboxEvent.id == later)
        ).one()
    # A live-stream client that saw the pruned events resumes from a number still above them.
    assert (seq, published) == (last_seq + 1, last_published + 1)


def test_the_leading_relay_prunes_on_its_interval(db: Database) -> None:
    # The module's own database, through a pool: the pruning thread and the test's reads run
    # at once, which one shared test connection cannot serve.
    old = [_count_shelf(db) for _ in range(2)]
    publish_all(db)
    _age(db, old)
    events = EventSettings(event_prune_interval_seconds=0.05)

    async def run() -> None:
        stop = asyncio.Event()
        pruning = asyncio.create_task(prune_periodically(db, events, stop, lambda: True))
        async with asyncio.timeout(30):
            while old[0] in await asyncio.to_thread(_events, db):
                await asyncio.sleep(0.02)
        stop.set()
        await pruning

    asyncio.run(run())
    assert _events(db) >= {old[1]} and old[0] not in _events(db)


def test_a_follower_relay_leaves_pruning_to_the_leader(test_db: Database) -> None:
    old = [_count_shelf(test_db) for _ in range(2)]
    publish_all(test_db)
    _age(test_db, old)
    events = EventSettings(event_prune_interval_seconds=0.01)

    async def run() -> None:
        stop = asyncio.Event()
        pruning = asyncio.create_task(prune_periodically(test_db, events, stop, lambda: False))
        await asyncio.sleep(0.2)
        stop.set()
        await pruning

    asyncio.run(run())
    assert set(old) <= _events(test_db)


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = migrated.sqlite_file(tmp_path / "prune.db")
    monkeypatch.setenv("ZHONGTAI_DATABASE_URL", url)
    get_settings.cache_clear()
    database = Database.connect(url)
    yield database
    database.dispose()
    get_settings.cache_clear()


def test_the_prune_command_removes_what_is_older_than_the_retention(
    cli_database: Database,
) -> None:
    _subscribe(cli_database)
    old, kept = _tag(cli_database, "old"), _tag(cli_database, "kept")
    publish_all(cli_database)
    _settle(cli_database, old, DeliveryStatus.DELIVERED)
    _age(cli_database, [old])

    result = CliRunner().invoke(events_app, ["prune", "--older-than-days", "30"])

    assert result.exit_code == 0, result.output
    assert result.output == (
        "pruned 1 events, 1 webhook deliveries and 0 handler receipts older than 30 days\n"
    )
    assert _events(cli_database) == {kept}
