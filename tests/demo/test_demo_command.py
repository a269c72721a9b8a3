"""`zhongtai demo` works on a fresh machine: default SQLite file, chain loaded once, then served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from typer.testing import CliRunner, Result

from zhongtai import cli
from zhongtai.cli import app
from zhongtai.core.auth import credentials


@pytest.fixture
def fresh_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """An empty working directory, no server started, and cheap password hashes for speed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(credentials, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.setattr(cli, "configure_logging", lambda *a, **kw: None)
    return calls


def _demo(*args: str) -> Result:
    # No ZHONGTAI_DATABASE_URL: the default SQLite file under .zhongtai/ is used.
    return CliRunner().invoke(app, ["demo", *args], env={"ZHONGTAI_DATABASE_URL": None})


def test_demo_on_a_fresh_machine_loads_the_chain_shows_how_to_try_it_and_serves(
    fresh_machine: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = _demo("--port", "8123")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".zhongtai" / "zhongtai.db").exists()
    summary = json.loads((tmp_path / ".zhongtai" / "demo-credentials.json").read_text())
    app_key = next(k["key"] for k in summary["api_keys"] if k["channel"] == "app")
    assert "http://127.0.0.1:8123/docs" in result.stdout
    assert "admin / zhongtai-demo" in result.stdout
    assert f"curl -s http://127.0.0.1:8123/api/v1/auth/me -H 'X-API-Key: {app_key}'" in (
        result.stdout
    )
    (call,) = fresh_machine
    assert call["app"] == "zhongtai.app:served_app" and call["factory"] is True
    assert call["port"] == 8123 and call["workers"] == 1


def test_demo_run_again_keeps_the_loaded_chain_and_shows_the_same_keys(
    fresh_machine: list[dict[str, Any]], tmp_path: Path
) -> None:
    first = _demo()
    assert first.exit_code == 0, first.output
    again = _demo()
    assert again.exit_code == 0, again.output
    assert "already holds" not in again.output
    keys = [line for line in again.stdout.splitlines() if line.startswith("app key:")]
    assert keys and keys[0] in first.stdout
    assert len(fresh_machine) == 2
