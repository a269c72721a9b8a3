"""On PostgreSQL, an event whose transaction commits after a later seq's is not skipped."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.orm import Session

from tests.integrations.events import ShelfCounted
from zhongtai.core.db import Database
from zhongtai.core.outbox import record_event
from zhongtai.integrations.handlers import PublishedEvent, on_event, unregister
from zhongtai.integrations.relay import Relay

pytestmark = pytest.mark.postgres_only


def test_the_relay_delivers_seq_5_committed_after_seq_6(own_database_url: str) -> None:
    seen: list[int] = []

    @on_event("test.shelf_counted", consumer="tests.relay.out_of_order")
    def remember(event: PublishedEvent, _session: Session) -> None:
        seen.append(event.seq)

    db = Database.connect(own_database_url, pool_size=4, max_overflow=0)
    try:
        slow = db.writer()
        slow.begin()
        early = record_event(
            slow, ShelfCounted(shelf="ooo", n=5), aggregate_type="shelf", aggregate_id="P"
        )
        slow.flush()  # draws the lower seq, but does not commit yet
        with db.writer() as fast, fast.begin():
            late = record_event(
                fast, ShelfCounted(shelf="ooo", n=6), aggregate_type="shelf", aggregate_id="Q"
            )
        assert early.seq < late.seq
        relay = Relay(db.writer)
        asyncio.run(relay.run_once())
        assert late.seq in seen and early.seq not in seen
        slow.commit()
        slow.close()
        asyncio.run(relay.run_once())
        assert early.seq in seen
    finally:
        unregister("tests.relay.out_of_order")
        db.dispose()
