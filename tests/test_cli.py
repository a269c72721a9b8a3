"""The `zhongtai` command: help for every command, migrate, create-admin and create-api-key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from typer.testing import CliRunner, Result

from zhongtai import cli
from zhongtai.cli import app
from zhongtai.core import migrate
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import StaffUser
from zhongtai.core.auth.roles import Channel
from zhongtai.core.db import Database
from zhongtai.core.settings import get_settings
from zhongtai.stores.models import Location, LocationKind

COMMANDS = [
    "serve",
    "migrate",
    "create-admin",
    "create-api-key",
    "seed-demo",
    "demo",
    "purge-idempotency-keys",
]
PASSWORD = "a-long-enough-password"


@pytest.fixture(autouse=True)
def _forget_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def migrated(url: str) -> str:
    assert _run(url, "migrate").exit_code == 0
    return url


def _run(url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"ZHONGTAI_DATABASE_URL": url}, input=input)


def _db(url: str) -> Database:
    return Database.connect(url)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself_with_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and command in result.output


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_migrate_builds_the_schema_and_prints_the_revision(url: str) -> None:
    result = _run(url, "migrate")
    assert result.exit_code == 0, result.output
    assert "is at revision" in result.stdout
    assert _run(url, "migrate").exit_code == 0  # and again: nothing to do, no error


def test_database_url_option_overrides_the_environment(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.db"
    result = CliRunner().invoke(
        app,
        ["--database-url", f"sqlite:///{chosen}", "migrate"],
        env={"ZHONGTAI_DATABASE_URL": f"sqlite:///{tmp_path / 'ignored.db'}"},
    )
    assert result.exit_code == 0, result.output
    assert chosen.exists() and not (tmp_path / "ignored.db").exists()


def test_create_admin_makes_an_hq_admin_who_can_log_in(migrated: str) -> None:
    result = _run(migrated, "create-admin", "--username", "boss", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    db = _db(migrated)
    try:
        with db.reader() as session:
            user = auth.check_password(session, "boss", PASSWORD)
            assert user is not None and user.role.value == "hq_admin"
            assert user.display_name == "boss"
    finally:
        db.dispose()


def test_create_admin_prompts_for_the_password_twice_when_not_given(migrated: str) -> None:
    typed = f"{PASSWORD}\n{PASSWORD}\n"
    result = _run(migrated, "create-admin", "--username", "prompted", input=typed)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed


def test_create_admin_with_an_existing_username_exits_1_with_one_clear_line(migrated: str) -> None:
    assert (
        _run(migrated, "create-admin", "--username", "boss", "--password", PASSWORD).exit_code == 0
    )
    again = _run(migrated, "create-admin", "--username", "boss", "--password", PASSWORD)
    assert again.exit_code == 1
    assert again.stderr.strip() == "error: A staff user named 'boss' already exists."
    db = _db(migrated)
    try:
        with db.reader() as session:
            assert len(session.scalars(select(StaffUser)).all()) == 1
    finally:
        db.dispose()


def test_create_admin_with_a_short_password_names_the_rule(migrated: str) -> None:
    result = _run(migrated, "create-admin", "--username", "boss", "--password", "short")
    assert result.exit_code == 1
    assert "password: must be at least 10 characters" in result.stderr


def test_create_admin_before_migrate_says_to_migrate_first(url: str) -> None:
    result = _run(url, "create-admin", "--username", "boss", "--password", PASSWORD)
    assert result.exit_code == 1
    assert "run `zhongtai migrate` first" in result.stderr


@pytest.mark.parametrize("bad_url", ["not a url", "nodb://somewhere/x"])
def test_a_bad_database_url_exits_1_without_a_traceback(bad_url: str) -> None:
    result = _run(bad_url, "migrate")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: bad database URL")
    assert len(result.stderr.strip().splitlines()) == 1


def test_create_api_key_prints_a_working_key_once_and_warns(migrated: str) -> None:
    result = _run(migrated, "create-api-key", "--channel", "erp", "--name", "ERP sync")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("ztk_")
    assert "not shown again" in result.stderr
    db = _db(migrated)
    try:
        with db.reader() as session:
            principal = auth.principal_for_api_key(session, key)
    finally:
        db.dispose()
    assert principal is not None and principal.channel is Channel.ERP


def test_create_pos_api_key_binds_the_store_by_its_code(migrated: str) -> None:
    db = _db(migrated)
    try:
        with db.writer() as session, session.begin():
            session.add(
                Location(
                    code="SH001",
                    name="中台超市 南京东路店",
                    kind=LocationKind.STORE,
                    region="黄浦区",
                    city="上海",
                    address="南京东路 353 号",
                    latitude=31.2375,
                    longitude=121.4845,
                    timezone="Asia/Shanghai",
                )
            )
        args = ["create-api-key", "--channel", "pos", "--name", "till 1", "--terminal", "T01"]
        result = _run(migrated, *args, "--store", "SH001")
        assert result.exit_code == 0, result.output
        with db.reader() as session:
            principal = auth.principal_for_api_key(session, result.stdout.strip())
            store_id = session.scalar(select(Location.id).where(Location.code == "SH001"))
    finally:
        db.dispose()
    assert principal is not None and principal.store_ids == frozenset({store_id})
    unknown = _run(migrated, *args, "--store", "NOPE")
    assert unknown.exit_code == 1
    assert "no location with code 'NOPE'" in unknown.stderr


def test_a_pos_key_without_store_and_terminal_is_refused(migrated: str) -> None:
    result = _run(migrated, "create-api-key", "--channel", "pos", "--name", "till")
    assert result.exit_code == 1
    assert "--store" in result.stderr and "--terminal" in result.stderr


def test_a_scope_beyond_the_channel_is_refused(migrated: str) -> None:
    args = ["create-api-key", "--channel", "app", "--name", "app", "--scope", "prices:write"]
    result = _run(migrated, *args)
    assert result.exit_code == 1
    assert "may not hold ['prices:write']" in result.stderr


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records what the CLI would ask uvicorn to run, instead of running a server."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.setattr(cli, "configure_logging", lambda *a, **kw: None)
    return calls


def test_serve_runs_the_app_factory_with_the_fast_loop(
    uvicorn_calls: list[dict[str, Any]], migrated: str
) -> None:
    result = _run(migrated, "serve", "--host", "10.0.0.5", "--port", "9001")
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert call["app"] == "zhongtai.app:served_app" and call["factory"] is True
    assert (call["host"], call["port"], call["workers"]) == ("10.0.0.5", 9001, 1)
    assert call["loop"] == "uvloop" and call["http"] == "httptools"


def test_serve_on_sqlite_warns_and_keeps_one_worker(
    uvicorn_calls: list[dict[str, Any]], migrated: str
) -> None:
    result = _run(migrated, "serve", "--workers", "4")
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[0]["workers"] == 1
    assert "SQLite" in result.stderr and "1 worker" in result.stderr


def test_serve_on_postgresql_starts_the_workers_asked_for(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "current_revision", lambda url: "0001")
    result = _run("postgresql+psycopg://zt@db.example/zt", "serve", "--workers", "4")
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[0]["workers"] == 4
    assert result.stderr == ""


def test_serve_refuses_an_unmigrated_database_before_starting(
    uvicorn_calls: list[dict[str, Any]], url: str
) -> None:
    result = _run(url, "serve")
    assert result.exit_code == 1
    assert "run `zhongtai migrate` first" in result.stderr
    assert uvicorn_calls == []


def test_purge_drops_only_idempotency_records_past_their_retention(migrated: str) -> None:
    from datetime import timedelta

    from sqlalchemy import func

    from zhongtai.core.clock import utcnow
    from zhongtai.core.idempotency import IdempotencyRecord

    db = _db(migrated)
    try:
        with db.writer() as s, s.begin():
            for key, age in (("old", timedelta(hours=30)), ("fresh", timedelta(hours=1))):
                s.add(
                    IdempotencyRecord(
                        scope="staff:x",
                        key=key,
                        fingerprint="f",
                        status_code=201,
                        content_type="application/json",
                        body=b"{}",
                        created_at=utcnow() - age,
                    )
                )
        result = _run(migrated, "purge-idempotency-keys")
        assert result.exit_code == 0, result.output
        assert "dropped 1" in result.stdout
        with db.reader() as s:
            keys = set(s.scalars(select(IdempotencyRecord.key)))
            assert keys == {"fresh"}
            assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1
    finally:
        db.dispose()


def test_orders_settlement_writes_the_csv_header_for_a_quiet_day_and_names_a_bad_store(
    migrated: str, tmp_path: Path
) -> None:
    out = tmp_path / "settlement.csv"
    result = _run(migrated, "orders", "settlement", "--day", "2026-01-05", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == [
        "business_date,store_code,channel,tender,payments,taken_fen,refunds,refunded_fen,net_fen"
    ]
    unknown = _run(migrated, "orders", "settlement", "--day", "2026-01-05", "--store", "NOPE")
    assert unknown.exit_code != 0
    assert "no store NOPE" in unknown.output


def test_the_order_sweepers_run_once_from_the_command_line_and_say_what_they_did(
    migrated: str,
) -> None:
    said = {
        "expire-unpaid": "cancelled 0 unpaid orders",
        "cancel-uncollected": "cancelled 0 orders left at the counter",
        "confirm-parcels": "confirmed 0 parcels received",
    }
    for command, answer in said.items():
        result = _run(migrated, "orders", command)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == answer
