"""The `zhongtai guides` commands for cron: tasks, maturing commission, closing a month."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import migrated
from zhongtai.core.settings import get_settings
from zhongtai.guides.cli import app


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = migrated.sqlite_file(tmp_path / "cli.db")
    monkeypatch.setenv("ZHONGTAI_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_a_month_still_inside_its_return_window_cannot_be_closed(cli_database: str) -> None:
    result = CliRunner().invoke(app, ["close-month", "2099-01"])
    assert result.exit_code == 1
    assert "can be closed from 2099-02-09" in result.output


def test_closing_a_past_month_twice_is_harmless_and_a_bad_month_is_named(
    cli_database: str,
) -> None:
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(app, ["close-month", "2026-01"])
        assert result.exit_code == 0, result.output
    assert "closed 2026-01: 0 target bonuses" in result.output
    bad = runner.invoke(app, ["close-month", "2026-13"])
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output


def test_tasks_and_maturing_run_on_an_empty_chain(cli_database: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["generate-tasks"]).output == "0 tasks added\n"
    matured = runner.invoke(app, ["mature-commission"])
    assert matured.output == "0 commission entries became payable\n"
