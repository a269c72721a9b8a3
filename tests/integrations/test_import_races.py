"""Stock snapshots under concurrency (PostgreSQL): a count brings on-hand to the counted figure
however many snapshots and sales arrive at once, and its report says what really happened."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from tests.races import all_at_once, race_database, stock_of, until_another_backend_waits_for_a_lock
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.db import Database
from zhongtai.integrations import imports
from zhongtai.integrations.import_rules import ImportKind, RawRow
from zhongtai.inventory import service as inventory

pytestmark = [pytest.mark.postgres_only]

WMS = Principal(
    kind="staff",
    id=uuid.UUID(int=7),
    name="wms",
    permissions=frozenset(Permission),
    store_ids=None,
)
CLIENTS = 8


@pytest.fixture(scope="module")
def pg_db() -> Iterator[Database]:
    with race_database("zt_import_race", pool_size=CLIENTS + 2) as database:
        yield database


def _dc_with_stock(db: Database, on_hand: int) -> tuple[Any, Any]:
    with db.writer() as s:  # the factory commits as it builds
        stock = StockFactory(s, Factory(s))
        dc, sku = stock.location(), stock.sku()
        stock.receive(dc, sku, on_hand)
        return dc, sku


def _snapshot(s: Session, batch_id: str, location_code: str, sku_code: str, count: int) -> Any:
    loaded = imports.load_batch(
        s,
        ImportKind.STOCK,
        batch_id,
        [RawRow(1, {"location_code": location_code, "sku_code": sku_code, "on_hand": count})],
        fingerprint=batch_id,
        caller=WMS,
    )
    [row] = loaded.batch.report
    return row


def test_snapshots_of_one_count_sent_at_once_leave_on_hand_at_the_count(pg_db: Database) -> None:
    """The WMS resends a count under new batch ids: each must bring on-hand *to* 15, not each
    add the variance it read before the others committed."""
    dc, sku = _dc_with_stock(pg_db, 10)

    def load(i: int) -> Any:
        with pg_db.writer() as s, s.begin():
            return _snapshot(s, f"count-{uuid.uuid4().hex}", dc.code, sku.code, 15)

    rows = all_at_once(CLIENTS, load)
    assert stock_of(pg_db, dc.id, sku.id) == (15, 0)
    assert sorted(r["variance"] for r in rows) == [0] * (CLIENTS - 1) + [5]
    assert all(r["on_hand_after"] == 15 for r in rows)
    with pg_db.reader() as s:
        assert inventory.verify_stock(s) == []


def _meanwhile(
    db: Database, first: Callable[[Session], object], then: Callable[[Session], Any]
) -> Any:
    """``first`` in a transaction left open while ``then`` runs in another; once ``then`` waits
    for a lock (or is done), ``first`` commits. What ``then`` answered."""
    outcome: list[Any] = []
    failure: list[Exception] = []

    def second() -> None:
        try:
            with db.writer() as s, s.begin():
                outcome.append(then(s))
        except Exception as exc:  # re-raised in the test's thread below
            failure.append(exc)

    with db.writer() as s:
        first(s)
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1)
        if thread.is_alive():  # it should be waiting for the first transaction
            until_another_backend_waits_for_a_lock(db, pid)
        s.commit()
        thread.join(timeout=30)
    if failure:
        raise failure[0]
    return outcome[0]


def test_a_snapshot_loaded_while_a_sale_commits_sets_the_count_and_reports_the_real_variance(
    pg_db: Database,
) -> None:
    dc, sku = _dc_with_stock(pg_db, 10)
    row = _meanwhile(
        pg_db,
        lambda s: inventory.adjust_stock(s, dc.id, sku.id, -1, reason="damaged", approver=None),
        lambda s: _snapshot(s, f"count-{uuid.uuid4().hex}", dc.code, sku.code, 15),
    )
    assert stock_of(pg_db, dc.id, sku.id) == (15, 0), "the count, not the count less the sale"
    assert (row["on_hand_before"], row["on_hand_after"], row["variance"]) == (9, 15, 6)
    with pg_db.reader() as s:
        assert inventory.verify_stock(s) == []


def test_two_snapshots_of_one_location_listing_its_skus_in_opposite_orders_both_load(
    pg_db: Database,
) -> None:
    """Row by row, one batch would hold the first SKU's row and wait for the last one's while
    the other holds the last and waits for the first: PostgreSQL would kill one as a deadlock."""
    with pg_db.writer() as s:
        stock = StockFactory(s, Factory(s))
        dc = stock.location()
        skus = stock.skus(40)
        for sku in skus:
            stock.receive(dc, sku, 10)
    orders = [skus, list(reversed(skus))]

    def load(i: int) -> Any:
        rows = [
            RawRow(n + 1, {"location_code": dc.code, "sku_code": sku.code, "on_hand": 20 + i})
            for n, sku in enumerate(orders[i])
        ]
        with pg_db.writer() as s, s.begin():
            return imports.load_batch(
                s,
                ImportKind.STOCK,
                f"opposite-{uuid.uuid4().hex}",
                rows,
                fingerprint=uuid.uuid4().hex,
                caller=WMS,
            ).batch.rows_loaded

    assert all_at_once(2, load) == [40, 40]
    counts = {stock_of(pg_db, dc.id, sku.id)[0] for sku in skus}
    assert len(counts) == 1 and counts <= {20, 21}, "one snapshot was applied after the other"
    with pg_db.reader() as s:
        assert inventory.verify_stock(s) == []
