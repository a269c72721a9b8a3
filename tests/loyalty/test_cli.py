"""`zhongtai loyalty verify`, `expire`, `mature` and `review-tiers` on a database of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from tests import migrated
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings, get_settings
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.cli import app
from zhongtai.loyalty.models import PointsLot, SourceType
from zhongtai.members import service as members
from zhongtai.members.models import IdentityKind


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = migrated.sqlite_file(tmp_path / "cli.db")
    monkeypatch.setenv("ZHONGTAI_DATABASE_URL", url)
    get_settings.cache_clear()
    database = Database.connect(url)
    yield database
    database.dispose()
    get_settings.cache_clear()


def _member_with_points(
    db: Database,
    points: int,
    days: int,
    *,
    pending_days: int | None = None,
    phone: str = "13700000000",
) -> None:
    cipher = members.cipher_for(Settings())
    with db.writer() as s, s.begin():
        member, _ = members.find_or_create_member(s, cipher, IdentityKind.PHONE, phone, via="pos")
        loyalty.earn_points(
            s,
            member.id,
            loyalty.Source(SourceType.POS_SALE, f"CLI-{days}"),
            points,
            valid_for=timedelta(days=days),
            pending_until=None if pending_days is None else utcnow() + timedelta(days=pending_days),
        )


def test_verify_exits_0_when_the_books_agree_and_1_listing_what_differs(db: Database) -> None:
    _member_with_points(db, 100, 30)
    ok = CliRunner().invoke(app, ["verify"])
    assert ok.exit_code == 0, ok.output
    assert "points verified: 1 accounts and 1 lots" in ok.output
    with db.writer() as s, s.begin():
        s.execute(update(PointsLot).values(remaining=1))
    bad = CliRunner().invoke(app, ["verify"])
    assert bad.exit_code == 1
    assert "2 points discrepancies" in bad.output  # the balance, and the lot itself


def test_expire_writes_off_points_past_their_date_and_a_second_run_finds_nothing(
    db: Database,
) -> None:
    _member_with_points(db, 100, 1)
    later = (utcnow() + timedelta(days=2)).isoformat()
    first = CliRunner().invoke(app, ["expire", "--now", later])
    assert first.exit_code == 0, first.output
    assert "expired 100 points in 1 lots of 1 members" in first.output
    again = CliRunner().invoke(app, ["expire", "--now", later])
    assert "expired 0 points" in again.output
    assert CliRunner().invoke(app, ["verify"]).exit_code == 0


def test_expire_and_mature_in_batches_of_one_member_go_on_until_every_member_is_done(
    db: Database,
) -> None:
    for i in range(3):
        _member_with_points(db, 10, 1, pending_days=1, phone=f"1370000001{i}")
    later = (utcnow() + timedelta(days=2)).isoformat()
    matured = CliRunner().invoke(app, ["mature", "--now", later, "--batch", "1"])
    assert "matured 30 points in 3 lots of 3 members" in matured.output
    expired = CliRunner().invoke(app, ["expire", "--now", later, "--batch", "1"])
    assert "expired 30 points in 3 lots of 3 members" in expired.output
    assert CliRunner().invoke(app, ["verify"]).exit_code == 0


def test_review_tiers_reviews_the_members_whose_date_has_come(db: Database) -> None:
    _member_with_points(db, 100, 30)
    soon = CliRunner().invoke(app, ["review-tiers"])
    assert soon.exit_code == 0, soon.output
    assert "reviewed the tiers of 0 members" in soon.output
    later = (utcnow() + timedelta(days=366)).isoformat()
    due = CliRunner().invoke(app, ["review-tiers", "--now", later])
    assert "reviewed the tiers of 1 members" in due.output


def test_mature_makes_pending_points_spendable_once_their_window_has_passed(
    db: Database,
) -> None:
    _member_with_points(db, 60, 30, pending_days=7)
    early = CliRunner().invoke(app, ["mature"])
    assert early.exit_code == 0, early.output
    assert "matured 0 points in 0 lots of 0 members" in early.output
    later = (utcnow() + timedelta(days=8)).isoformat()
    due = CliRunner().invoke(app, ["mature", "--now", later])
    assert "matured 60 points in 1 lots of 1 members" in due.output
    assert "matured 0 points" in CliRunner().invoke(app, ["mature", "--now", later]).output
    assert CliRunner().invoke(app, ["verify"]).exit_code == 0
