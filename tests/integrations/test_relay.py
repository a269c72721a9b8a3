"""The relay delivers every committed event at least once, in order per aggregate, only those."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.integrations.events import PriceTagged, ShelfCounted
from tests.statements import recorded_on
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent, record_event
from zhongtai.integrations.handlers import (
    PublishedEvent,
    claim_event,
    claim_events,
    on_event,
    on_events,
    unregister,
)
from zhongtai.integrations.models import HandledEvent, RelayLease
from zhongtai.integrations.relay import Relay

CONSUMER = "tests.relay.counter"


@pytest.fixture
def seen() -> Iterator[list[PublishedEvent]]:
    got: list[PublishedEvent] = []

    @on_event("test.shelf_counted", consumer=CONSUMER)
    def count(event: PublishedEvent, _session: Session) -> None:
        got.append(event)

    yield got
    unregister(CONSUMER)


def _record(db: Database, shelf: str, n: int, aggregate: str = "A") -> None:
    with db.writer() as s, s.begin():
        record_event(
            s, ShelfCounted(shelf=shelf, n=n), aggregate_type="shelf", aggregate_id=aggregate
        )


def _pass(relay: Relay) -> int:
    return asyncio.run(relay.run_once())


def test_committed_events_reach_the_handler_once_in_seq_order(
    test_db: Database, seen: list[PublishedEvent]
) -> None:
    for n in range(5):
        _record(test_db, "s1", n)
    relay = Relay(test_db.writer)
    assert _pass(relay) == 5
    assert [e.payload["n"] for e in seen] == [0, 1, 2, 3, 4]
    assert _pass(relay) == 0
    assert len(seen) == 5


def test_an_event_of_a_rolled_back_transaction_is_never_delivered(
    test_db: Database, seen: list[PublishedEvent]
) -> None:
    with test_db.writer() as s:
        s.begin()
        record_event(s, ShelfCounted(shelf="gone", n=1), aggregate_type="shelf", aggregate_id="G")
        s.flush()
        s.rollback()
    _pass(Relay(test_db.writer))
    assert [e for e in seen if e.payload["shelf"] == "gone"] == []


def test_a_redelivered_event_does_not_run_a_handler_twice(
    test_db: Database, seen: list[PublishedEvent]
) -> None:
    _record(test_db, "again", 1)
    relay = Relay(test_db.writer)
    _pass(relay)
    # As after a crash between the handler's commit and the publish marker.
    with test_db.writer() as s, s.begin():
        s.execute(update(OutboxEvent).values(published_at=None))
    assert _pass(relay) >= 1
    assert [e.payload["n"] for e in seen if e.payload["shelf"] == "again"] == [1]


def test_an_event_committed_after_a_later_seq_is_still_delivered(
    test_db: Database, seen: list[PublishedEvent]
) -> None:
    _record(test_db, "late", 6)
    relay = Relay(test_db.writer)
    _pass(relay)
    with test_db.writer() as s:
        top = s.scalar(select(OutboxEvent.seq).order_by(OutboxEvent.seq.desc()).limit(1))
    assert top is not None
    # The transaction that drew a lower seq commits only now (simulated by inserting that seq).
    with test_db.writer() as s, s.begin():
        event = record_event(
            s, ShelfCounted(shelf="late", n=5), aggregate_type="shelf", aggregate_id="other"
        )
        event.seq = top - 100_000 if top > 100_000 else -top
    assert _pass(relay) == 1
    assert sorted(e.payload["n"] for e in seen if e.payload["shelf"] == "late") == [5, 6]
    # Its publication number comes after the later seq's: a stream resumed there still sees it.
    with test_db.writer() as s:
        numbers = {
            e.payload["n"]: e.published_seq
            for e in s.scalars(select(OutboxEvent).where(OutboxEvent.type == "test.shelf_counted"))
            if e.payload["shelf"] == "late"
        }
    assert numbers[6] is not None and numbers[5] is not None
    assert numbers[5] > numbers[6]


def test_a_pass_numbers_its_events_next_in_seq_order_and_never_renumbers_one(
    test_db: Database,
) -> None:
    relay = Relay(test_db.writer)
    _record(test_db, "numbered", 0)
    _pass(relay)
    for n in range(1, 5):
        _record(test_db, "numbered", n)
    with test_db.writer() as s:
        rows = s.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.type == "test.shelf_counted")
            .order_by(OutboxEvent.seq)
        ).all()
        before = {e.seq: e.published_seq for e in rows}
        highest = s.scalar(select(func.max(OutboxEvent.published_seq)))
        events = [PublishedEvent.of(e) for e in rows]
    # The first event was published already: marking it again changes nothing of it.
    assert relay.mark_published(events) == 4
    assert relay.mark_published(events) == 0
    with test_db.writer() as s:
        after = dict(s.execute(select(OutboxEvent.seq, OutboxEvent.published_seq)).all())
        stamped = s.scalar(select(OutboxEvent.published_at).where(OutboxEvent.seq == max(before)))
    first_seq = min(before)
    assert after[first_seq] == before[first_seq]
    assert highest is not None and before[first_seq] is not None
    assert [after[seq] for seq in sorted(before) if seq != first_seq] == [
        highest + 1,
        highest + 2,
        highest + 3,
        highest + 4,
    ]
    assert stamped is not None


def test_a_failing_handler_holds_back_its_aggregate_only_until_it_succeeds(
    test_db: Database, seen: list[PublishedEvent]
) -> None:
    failures = {"left": 2}
    order: list[tuple[str, int]] = []

    @on_event("test.shelf_counted", consumer="tests.relay.flaky")
    def flaky(event: PublishedEvent, _session: Session) -> None:
        if event.aggregate_id == "X" and event.payload["n"] == 1 and failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("downstream unavailable")
        order.append((event.aggregate_id, event.payload["n"]))

    try:
        for n in (1, 2, 3):
            _record(test_db, "flaky", n, aggregate="X")
        _record(test_db, "flaky", 9, aggregate="Y")
        relay = Relay(test_db.writer)
        assert _pass(relay) == 1  # Y's event; X's three wait behind the failed first one
        assert order == [("Y", 9)]
        _pass(relay)
        assert order == [("Y", 9)]
        assert _pass(relay) == 3
        assert order == [("Y", 9), ("X", 1), ("X", 2), ("X", 3)]
        # The counter ran X's events before the flaky handler failed, and once only.
        assert [e.payload["n"] for e in seen if e.aggregate_id == "X"] == [1, 2, 3]
    finally:
        unregister("tests.relay.flaky")


def test_a_batch_handler_gets_a_pass_of_events_at_once_in_seq_order_and_never_again(
    test_db: Database,
) -> None:
    calls: list[list[int]] = []

    @on_events("test.shelf_counted", consumer="tests.relay.batch")
    def tally(events: list[PublishedEvent], _session: Session) -> None:
        calls.append([e.payload["n"] for e in events])

    try:
        for n in range(6):
            _record(test_db, "batch", n, aggregate=f"B{n % 2}")
        relay = Relay(test_db.writer)
        assert _pass(relay) == 6
        assert calls == [[0, 1, 2, 3, 4, 5]]
        # Redelivered (a crash before the publish marker): the claims say they were handled.
        with test_db.writer() as s, s.begin():
            s.execute(update(OutboxEvent).values(published_at=None))
        assert _pass(relay) >= 6
        assert calls == [[0, 1, 2, 3, 4, 5]]
    finally:
        unregister("tests.relay.batch")


def test_a_failing_batch_goes_one_event_at_a_time_and_only_the_failing_aggregate_waits(
    test_db: Database,
) -> None:
    calls: list[list[tuple[str, int]]] = []
    failures = {"left": 2}  # the whole batch, then X's first event alone

    @on_events("test.shelf_counted", consumer="tests.relay.batch_flaky")
    def flaky(events: list[PublishedEvent], _session: Session) -> None:
        first_of_x = any(e.aggregate_id == "X" and e.payload["n"] == 1 for e in events)
        if first_of_x and failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("downstream unavailable")
        calls.append([(e.aggregate_id, e.payload["n"]) for e in events])

    try:
        for n in (1, 2):
            _record(test_db, "bflaky", n, aggregate="X")
        _record(test_db, "bflaky", 9, aggregate="Y")
        relay = Relay(test_db.writer)
        assert _pass(relay) == 1  # Y's event, on its own; X waits behind its failed first
        assert calls == [[("Y", 9)]]
        assert _pass(relay) == 2  # X's two, in order, as one batch now
        assert calls == [[("Y", 9)], [("X", 1), ("X", 2)]]
    finally:
        unregister("tests.relay.batch_flaky")


def test_a_handler_with_nothing_to_do_lets_its_events_by_unclaimed_and_runs_once_it_has(
    test_db: Database,
) -> None:
    calls: list[list[int]] = []
    wanted = {"now": False}
    asked: list[bool] = []

    def has_work(session: Session) -> bool:
        assert session.scalar(select(1)) == 1  # it is handed a working session
        asked.append(wanted["now"])
        return wanted["now"]

    @on_events("test.shelf_counted", consumer="tests.relay.conditional", only_if=has_work)
    def tally(events: list[PublishedEvent], _session: Session) -> None:
        calls.append([e.payload["n"] for e in events])

    def claimed() -> int:
        with test_db.reader() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(HandledEvent)
                    .where(HandledEvent.consumer == "tests.relay.conditional")
                )
                or 0
            )

    try:
        for n in range(3):  # a batch of three, then a lone one: both paths pass it by
            _record(test_db, "cond", n, aggregate=f"C{n}")
        relay = Relay(test_db.writer)
        assert _pass(relay) == 3
        _record(test_db, "cond", 3)
        assert _pass(relay) == 1
        assert calls == []
        assert claimed() == 0
        assert asked == [False, False], "asked once per pass"
        wanted["now"] = True
        for n in (4, 5):
            _record(test_db, "cond", n, aggregate=f"C{n}")
        _record(test_db, "cond", 6, aggregate="C6")
        assert _pass(relay) == 3
        assert calls == [[4, 5, 6]]
        assert claimed() == 3
    finally:
        unregister("tests.relay.conditional")


def test_claiming_events_in_one_statement_answers_only_the_new_ones(session: Session) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert claim_events(session, "tests.claims", [first]) == {first}
    assert claim_events(session, "tests.claims", [first, second]) == {second}
    assert claim_events(session, "tests.other", [first, second]) == {first, second}
    assert claim_events(session, "tests.claims", []) == set()


def test_only_the_lease_holder_relays_until_its_lease_expires(
    test_db: Database, seen: list[PublishedEvent]
) -> None:
    first = Relay(test_db.writer, holder="relay-1", lease_seconds=60)
    second = Relay(test_db.writer, holder="relay-2", lease_seconds=60)
    _record(test_db, "lease", 1)
    assert _pass(first) == 1
    _record(test_db, "lease", 2)
    assert _pass(second) == 0
    assert not second.leading
    first.release_lease()
    assert _pass(second) == 1
    assert [e.payload["n"] for e in seen if e.payload["shelf"] == "lease"] == [1, 2]


def test_a_follower_only_reads_the_lease_while_another_relay_holds_it_then_takes_it_once_expired(
    test_db: Database, seen: list[PublishedEvent]
) -> None:
    leader = Relay(test_db.writer, holder="relay-lead", lease_seconds=60)
    follower = Relay(test_db.writer, holder="relay-follow", lease_seconds=60)
    _record(test_db, "follow", 1)
    assert _pass(leader) == 1
    with recorded_on(test_db.engine, lambda sql, _: " ".join(sql.split()).upper()) as sent:
        _record(test_db, "follow", 2)
        sent.clear()
        for _ in range(3):
            assert _pass(follower) == 0
    assert not follower.leading
    on_lease = [x for x in sent if "RELAY_LEASES" in x]
    assert len(on_lease) == 3, "one look per pass"
    assert all(x.startswith("SELECT") for x in on_lease), on_lease
    with test_db.writer() as s, s.begin():  # the leader died: its lease ran out
        s.execute(update(RelayLease).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert _pass(follower) == 1
    assert follower.leading
    assert [e.payload["n"] for e in seen if e.payload["shelf"] == "follow"] == [1, 2]


def test_an_event_without_handlers_is_published_too(test_db: Database) -> None:
    with test_db.writer() as s, s.begin():
        record_event(s, PriceTagged(tag="t1"), aggregate_type="tag", aggregate_id="t1")
    assert _pass(Relay(test_db.writer)) == 1
    with test_db.writer() as s:
        published = s.scalars(
            select(OutboxEvent.published_at).where(OutboxEvent.type == "test.price_tagged")
        ).all()
    assert published and all(p is not None for p in published)


def test_claiming_an_event_twice_for_one_consumer_answers_false(session: Session) -> None:
    from zhongtai.core.ids import new_id

    event_id = new_id()
    assert claim_event(session, "tests.claim", event_id) is True
    assert claim_event(session, "tests.claim", event_id) is False
    assert claim_event(session, "tests.other", event_id) is True
