"""Events are recorded in the transaction of their change: committed together or not at all."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.outbox import EVENT_TYPES, OutboxEvent, event_type, record_event, write_event


@event_type("test.thing_happened", version=2)
class ThingHappened(BaseModel):
    """A thing happened (used by the outbox tests only)."""

    thing: str
    count: int


def _events(session: Session, thing: str) -> list[OutboxEvent]:
    return [
        e
        for e in session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "test.thing_happened")
        )
        if e.payload["thing"] == thing
    ]


def test_declared_event_types_form_the_catalogue() -> None:
    declared = EVENT_TYPES["test.thing_happened"]
    assert declared.version == 2
    assert declared.description.startswith("A thing happened")
    assert declared.payload is ThingHappened


def test_an_event_commits_with_its_change_and_carries_request_and_actor(session: Session) -> None:
    rid = context.request_id.set("req-123")
    who = context.actor.set("staff:abc")
    try:
        with session.begin_nested():
            record_event(
                session,
                ThingHappened(thing="kept", count=1),
                aggregate_type="thing",
                aggregate_id="T1",
            )
    finally:
        context.request_id.reset(rid)
        context.actor.reset(who)
    [event] = _events(session, "kept")
    assert event.version == 2
    assert event.payload == {"thing": "kept", "count": 1}
    assert (event.request_id, event.actor) == ("req-123", "staff:abc")
    assert event.aggregate_id == "T1"
    assert event.occurred_at.tzinfo is not None


def test_an_event_of_a_rolled_back_change_is_gone(session: Session) -> None:
    savepoint = session.begin_nested()
    record_event(
        session, ThingHappened(thing="dropped", count=1), aggregate_type="thing", aggregate_id="T2"
    )
    session.flush()
    savepoint.rollback()
    assert _events(session, "dropped") == []


def test_events_are_ordered_by_sequence_in_recording_order(session: Session) -> None:
    first = record_event(
        session, ThingHappened(thing="order", count=1), aggregate_type="thing", aggregate_id="T3"
    )
    second = record_event(
        session, ThingHappened(thing="order", count=2), aggregate_type="thing", aggregate_id="T3"
    )
    session.flush()
    assert first.seq < second.seq


def test_an_event_written_at_once_comes_after_those_recorded_before_it(session: Session) -> None:
    rid = context.request_id.set("req-456")
    try:
        recorded = record_event(
            session,
            ThingHappened(thing="mixed", count=1),
            aggregate_type="thing",
            aggregate_id="T4",
        )
        write_event(
            session,
            ThingHappened(thing="mixed", count=2),
            aggregate_type="thing",
            aggregate_id="T4",
        )
    finally:
        context.request_id.reset(rid)
    events = sorted(_events(session, "mixed"), key=lambda e: e.seq)
    assert [e.payload["count"] for e in events] == [1, 2]
    assert events[0] is recorded
    written = events[1]
    assert (written.version, written.aggregate_id, written.request_id) == (2, "T4", "req-456")
    assert written.published_at is None and written.occurred_at.tzinfo is not None


def test_a_written_event_of_a_rolled_back_change_is_gone(session: Session) -> None:
    savepoint = session.begin_nested()
    write_event(
        session,
        ThingHappened(thing="unwritten", count=1),
        aggregate_type="thing",
        aggregate_id="T5",
    )
    savepoint.rollback()
    assert _events(session, "unwritten") == []


def test_an_undeclared_payload_is_refused() -> None:
    class Stray(BaseModel):
        x: int

    with pytest.raises(TypeError):
        record_event(None, Stray(x=1), aggregate_type="x", aggregate_id="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        write_event(None, Stray(x=1), aggregate_type="x", aggregate_id="1")  # type: ignore[arg-type]


def test_event_names_must_be_lower_case_and_dotted() -> None:
    with pytest.raises(ValueError):
        event_type("StockChanged")(ThingHappened)
