"""`zhongtai seed-demo` loads the chain once, refuses to load it twice, and resets on request."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from tests import pg
from zhongtai.catalog.models import Sku
from zhongtai.cli import app
from zhongtai.core.auth import service as auth
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.demo import read_demo_credentials
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.coupons import create_template

SMALL = ["--stores", "2", "--skus", "40", "--staff-per-store", "1", "--members", "120"]


def _seed(url: str, credentials: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app,
        ["seed-demo", *SMALL, "--credentials-file", str(credentials), *args],
        env={"ZHONGTAI_DATABASE_URL": url},
    )


def _sku_count(url: str) -> int:
    db = Database.connect(url)
    try:
        with db.reader() as session:
            return session.scalar(select(func.count()).select_from(Sku)) or 0
    finally:
        db.dispose()


def test_seed_demo_on_an_empty_database_migrates_and_loads_the_chain(
    sqlite_url: str, tmp_path: Path
) -> None:
    result = _seed(sqlite_url, tmp_path / "creds.json")
    assert result.exit_code == 0, result.output
    assert _sku_count(sqlite_url) == 40
    assert "Demo chain loaded" in result.stdout


def test_seed_demo_twice_without_reset_refuses_with_exit_code_1(
    sqlite_url: str, tmp_path: Path
) -> None:
    assert _seed(sqlite_url, tmp_path / "creds.json").exit_code == 0
    again = _seed(sqlite_url, tmp_path / "creds.json", "--skus", "55")
    assert again.exit_code == 1
    assert "already holds demo data" in again.stderr
    assert "--reset" in again.stderr
    assert "Traceback" not in again.output
    assert _sku_count(sqlite_url) == 40


def test_seed_demo_with_reset_replaces_the_chain_and_can_run_again(
    sqlite_url: str, tmp_path: Path
) -> None:
    assert _seed(sqlite_url, tmp_path / "creds.json").exit_code == 0
    for _ in range(2):
        result = _seed(sqlite_url, tmp_path / "creds.json", "--reset", "--skus", "25")
        assert result.exit_code == 0, result.output
        assert _sku_count(sqlite_url) == 25


def _add_a_template_older_schemas_cannot_hold(url: str) -> None:
    """A free-delivery coupon valid until a fixed date (no 'valid N days'): kinds and validity
    the first schema did not know, so walking the migrations down could not keep the row."""
    db = Database.connect(url)
    try:
        with db.writer() as session, session.begin():
            create_template(
                session,
                code="FREESHIP-NOV",
                name="Free delivery in November",
                terms=CouponTerms(CouponKind.FREE_DELIVERY, 0),
                valid_until=utcnow() + timedelta(days=5),
            )
    finally:
        db.dispose()


def test_reset_drops_whatever_hq_added_since_and_loads_the_chain_again(
    sqlite_url: str, tmp_path: Path
) -> None:
    assert _seed(sqlite_url, tmp_path / "creds.json").exit_code == 0
    _add_a_template_older_schemas_cannot_hold(sqlite_url)

    result = _seed(sqlite_url, tmp_path / "creds.json", "--reset", "--skus", "25")

    assert result.exit_code == 0, result.output
    assert _sku_count(sqlite_url) == 25


@pytest.mark.postgres_only
def test_reset_on_postgresql_drops_tables_and_the_audit_trigger_function(tmp_path: Path) -> None:
    with pg.temporary_database("zt_reset") as url:
        assert _seed(url, tmp_path / "creds.json").exit_code == 0, "first load"
        _add_a_template_older_schemas_cannot_hold(url)

        result = _seed(url, tmp_path / "creds.json", "--reset", "--skus", "25")

        assert result.exit_code == 0, result.output
        assert _sku_count(url) == 25


def test_the_credentials_file_holds_logins_and_keys_that_work(
    sqlite_url: str, tmp_path: Path
) -> None:
    credentials = tmp_path / "nested" / "creds.json"
    assert _seed(sqlite_url, credentials, "--seed", "3").exit_code == 0
    summary = read_demo_credentials(credentials)
    assert summary["seed"] == 3
    login = next(x for x in summary["logins"] if x["username"] == "manager.sh002")
    erp = next(k for k in summary["api_keys"] if k["channel"] == "erp")
    db = Database.connect(sqlite_url)
    try:
        with db.reader() as session:
            assert auth.check_password(session, login["username"], login["password"]) is not None
            principal = auth.principal_for_api_key(session, erp["key"])
            assert principal is not None and principal.store_ids is None
            sample = summary["sample_barcodes"][0]
            sku_id = uuid.UUID(sample["sku_id"])
            sku_code = session.scalar(select(Sku.code).where(Sku.id == sku_id))
    finally:
        db.dispose()
    assert sku_code == sample["sku_code"]
