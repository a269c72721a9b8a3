"""The embedded default: the API server relays events itself, unless told another process does."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import TEST_SECRET
from tests.integrations.events import ShelfCounted
from zhongtai.app import create_app
from zhongtai.core.db import Database
from zhongtai.core.outbox import record_event
from zhongtai.core.settings import Settings
from zhongtai.integrations.handlers import PublishedEvent, on_event, unregister


@pytest.fixture
def handled() -> Iterator[list[str]]:
    seen: list[str] = []

    @on_event("test.shelf_counted", consumer="tests.serve.handler")
    def remember(event: PublishedEvent, _session: Session) -> None:
        seen.append(event.payload["shelf"])

    yield seen
    unregister("tests.serve.handler")


def _settings(url: str) -> Settings:
    return Settings(database_url=url, secret_key=TEST_SECRET, log_json=False, log_level="WARNING")  # type: ignore[arg-type]


def _record(url: str, shelf: str) -> str:
    db = Database.connect(url, pool_size=1, max_overflow=0)
    try:
        with db.writer() as s, s.begin():
            return str(
                record_event(
                    s, ShelfCounted(shelf=shelf, n=1), aggregate_type="shelf", aggregate_id=shelf
                ).id
            )
    finally:
        db.dispose()


def test_a_served_app_delivers_events_committed_while_it_runs(
    own_database_url: str, handled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHONGTAI_RELAY_POLL_SECONDS", "0.05")
    monkeypatch.setenv("ZHONGTAI_RELAY_LEASE_SECONDS", "1")
    with TestClient(create_app(_settings(own_database_url))):
        _record(own_database_url, "served")
        deadline = time.monotonic() + 30
        while "served" not in handled:
            assert time.monotonic() < deadline, "the in-process relay delivered nothing"
            time.sleep(0.05)


def test_with_the_in_process_relay_switched_off_the_server_runs_none(
    own_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHONGTAI_RELAY_IN_PROCESS", "false")
    app = create_app(_settings(own_database_url))
    with TestClient(app):
        assert app.state.event_backbone is None
    monkeypatch.setenv("ZHONGTAI_RELAY_IN_PROCESS", "true")
    app = create_app(_settings(own_database_url))
    with TestClient(app):
        assert app.state.event_backbone is not None
        assert not app.state.event_backbone.done()
