"""`zhongtai inventory verify` proves balances equal the ledger and names every row that differs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from tests import migrated
from tests.factories import Factory
from tests.inventory.conftest import StockFactory, line
from zhongtai.core.db import Database
from zhongtai.core.settings import get_settings
from zhongtai.inventory import service
from zhongtai.inventory.cli import app
from zhongtai.inventory.models import StockBalance


def test_verify_names_a_balance_that_drifted_from_its_ledger(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    service.reserve(session, "c-v", store.id, [line(sku, 2)], timedelta(minutes=5))
    assert service.verify_stock(session) == []
    session.execute(
        update(StockBalance)
        .where(StockBalance.sku_id == sku.id)
        .values(on_hand=StockBalance.on_hand + 1, reserved=0)
    )
    differences = {(d.field, d.balance, d.expected) for d in service.verify_stock(session)}
    assert differences == {("on_hand", 6, 5), ("reserved", 0, 2)}


@pytest.fixture
def cli_db(tmp_path: Path) -> Iterator[Database]:
    url = migrated.sqlite_file(tmp_path / "verify.db")
    get_settings.cache_clear()
    db = Database.connect(url)
    yield db
    db.dispose()
    get_settings.cache_clear()


def _run(db: Database, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"ZHONGTAI_DATABASE_URL": db.url})


def test_the_command_exits_zero_on_a_healthy_ledger_and_one_with_the_rows_that_differ(
    cli_db: Database,
) -> None:
    with cli_db.writer() as s:  # the factories commit as they go
        stock = StockFactory(s, Factory(s))
        store, sku = stock.location(), stock.sku()
        stock.receive(store, sku, 7)
    healthy = _run(cli_db, "verify")
    assert healthy.exit_code == 0, healthy.output
    with cli_db.writer() as s, s.begin():
        s.execute(update(StockBalance).values(on_hand=9))
    broken = _run(cli_db, "verify")
    assert broken.exit_code == 1
    assert str(sku.id)[:8] in broken.output and "on_hand" in broken.output


def test_the_sweeper_command_expires_overdue_reservations(cli_db: Database) -> None:
    with cli_db.writer() as s:  # the factories commit as they go
        stock = StockFactory(s, Factory(s))
        store, sku = stock.location(), stock.sku()
        stock.receive(store, sku, 7)
        past = service.reserve(
            s, "c-cli", store.id, [line(sku, 3)], timedelta(minutes=1)
        ).reservation.expires_at - timedelta(hours=1)
        s.execute(update(service.Reservation).values(expires_at=past))
        s.commit()
    result = _run(cli_db, "expire-reservations")
    assert result.exit_code == 0 and "expired 1" in result.output
    assert _run(cli_db, "verify").exit_code == 0
