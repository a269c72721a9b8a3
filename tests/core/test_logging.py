"""Log lines are JSON objects carrying the request id of the request they belong to."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from zhongtai.app import create_app
from zhongtai.core.db import Database
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
