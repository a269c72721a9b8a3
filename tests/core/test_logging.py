"""Log lines are JSON objects carrying the request id of the request they belong to."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from zhongtai.app import create_app
from zhongtai.core.db import Database
from zhongtai.core.logging import configure_logging, get_logger
from zhongtai.core.settings import Settings


def test_access_log_is_one_json_line_with_the_request_id(
    settings: Settings, test_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(
        settings.model_copy(update={"log_json": True, "log_level": "INFO"}), db=test_db
    )
    with TestClient(app) as client:
        r = client.get("/healthz", headers={"X-Request-ID": "till-7-0001"})
    assert r.status_code == 200
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    access = [e for e in lines if e.get("event") == "request" and e.get("path") == "/healthz"]
    assert access, "no access log line was written"
    assert access[-1]["request_id"] == "till-7-0001"
    assert access[-1]["status"] == 200
    assert access[-1]["method"] == "GET"
    assert "timestamp" in access[-1]


def test_a_line_below_the_level_is_dropped_before_it_is_stamped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stamped: list[str] = []
    stamp = structlog.processors.TimeStamper.__call__

    def counting(self: Any, logger: Any, name: str, event: Any) -> Any:
        stamped.append(event["event"])
        return stamp(self, logger, name, event)

    monkeypatch.setattr(structlog.processors.TimeStamper, "__call__", counting)
    configure_logging("WARNING")
    log = get_logger("zhongtai.test.levels")
    log.info("below the level")
    log.warning("at the level")
    assert stamped == ["at the level"]
    assert "below the level" not in capsys.readouterr().err
