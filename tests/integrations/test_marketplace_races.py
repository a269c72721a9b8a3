"""The stock-push queue under concurrency: no change is lost to a race, a change during a push
is pushed again, and a late outcome never takes a SKU back to an older version."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
from zhongtai.integrations import marketplace
from zhongtai.integrations.marketplace_changes import mark_stock_changed, mark_stocks_changed
from zhongtai.integrations.marketplace_models import MarketplaceStockPush
from zhongtai.integrations.marketplace_queue import (
    StockPush,
    due_stock,
    prepare_pushes,
    record_failed,
    record_pushed,
)
from zhongtai.integrations.marketplace_rules import plan_batches
from zhongtai.integrations.targets import TargetGuard
from zhongtai.inventory import service as inventory

INTERVAL_MS = 500


@pytest.fixture(scope="module")
def db(own_database_url: str) -> Iterator[Database]:
    database = Database.connect(own_database_url, pool_size=12, max_overflow=4)
    yield database
    database.dispose()


class Setup:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.writer() as s:
            factory = Factory(s)
            self.store = factory.location()
            self.sku = CatalogFactory(s, factory).sku()
            s.commit()
        with db.writer() as s, s.begin():
            view, _ = marketplace.create_connection(
                s,
                name=f"race{uuid.uuid4().hex[:8]}",
                endpoint_url="http://127.0.0.1:9/unused",
                guard=TargetGuard(allow_private=True),
                sealer=marketplace.marketplace_secrets(Settings()),
                store_ids=[self.store.id],
                min_interval_ms=INTERVAL_MS,
            )
        self.connection_id = view.connection.id

    def change(self) -> None:
        with self.db.writer() as s, s.begin():
            mark_stock_changed(s, self.store.id, self.sku.id)

    def receive(self, quantity: int) -> None:
        with self.db.writer() as s, s.begin():
            inventory.receive_stock(
                s, self.store.id, [inventory.ReceiptLine(self.sku.id, quantity)]
            )

    def row(self) -> MarketplaceStockPush:
        with self.db.reader() as s:
            return s.scalars(
                select(MarketplaceStockPush).where(
                    MarketplaceStockPush.connection_id == self.connection_id
                )
            ).one()

    def due(self, *, later_by: timedelta = timedelta(0)) -> list[StockPush]:
        with self.db.reader() as s:
            dirty, destinations = due_stock(
                s, busy=(), full_connections=(), limit=100, now=utcnow() + later_by
            )
            mine = [d for d in dirty if d.connection_id == self.connection_id]
            batches = plan_batches(
                mine,
                busy=(),
                in_flight_per_connection={},
                per_connection=1,
                max_items=100,
                room=1,
            )
            return prepare_pushes(s, batches, destinations)

    def pushed(self, push: StockPush) -> None:
        with self.db.writer() as s, s.begin():
            record_pushed(s, push, sent_at=utcnow())


@pytest.fixture
def setup(db: Database) -> Setup:
    return Setup(db)


def test_concurrent_changes_each_count_once(setup: Setup) -> None:
    def changes() -> None:
        for _ in range(25):
            setup.change()

    threads = [threading.Thread(target=changes) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = setup.row()
    assert (row.version, row.pushed_version) == (200, 0)


def test_changes_marked_together_each_count_once(setup: Setup) -> None:
    setup.receive(5)  # the balance row a stock change is about
    pair = (setup.store.id, setup.sku.id)
    with setup.db.writer() as s, s.begin():
        assert mark_stocks_changed(s, [pair, pair, pair]) == 1
    assert (setup.row().version, setup.row().pushed_version) == (3, 0)
    with setup.db.writer() as s, s.begin():
        mark_stocks_changed(s, [pair, (setup.store.id, uuid.uuid4()), pair])
    assert setup.row().version == 5


def test_a_change_while_a_push_is_in_flight_is_pushed_again_after_the_interval(
    setup: Setup,
) -> None:
    setup.receive(5)
    setup.change()
    [push] = setup.due()
    assert [(i.quantity, i.version) for i in push.items] == [(5, 1)]
    setup.receive(4)  # the stock moves while the request is on its way
    setup.change()
    setup.pushed(push)

    row = setup.row()
    assert (row.pushed_version, row.version, row.pushed_quantity) == (1, 2, 5)
    assert setup.due() == [], "it rests for the interval first"
    [again] = setup.due(later_by=timedelta(milliseconds=INTERVAL_MS + 1))
    assert [(i.quantity, i.version) for i in again.items] == [(9, 2)]


def test_a_late_outcome_never_takes_a_sku_back_to_an_older_version(setup: Setup) -> None:
    setup.receive(3)
    setup.change()
    [older] = setup.due()
    setup.receive(2)
    setup.change()
    setup.pushed(older)
    [newer] = setup.due(later_by=timedelta(milliseconds=INTERVAL_MS + 1))
    setup.pushed(newer)
    setup.pushed(older)  # e.g. recorded again by a relay that lost its lease meanwhile

    row = setup.row()
    assert (row.pushed_version, row.pushed_quantity) == (2, 5)


def test_a_failed_push_waits_for_its_backoff_and_succeeds_with_fresh_figures(
    setup: Setup,
) -> None:
    setup.receive(7)
    setup.change()
    [push] = setup.due()
    with setup.db.writer() as s, s.begin():
        wait = record_failed(s, push, error="HTTP 503: busy", backoff_base=10, backoff_cap=60)
    assert timedelta(seconds=5) <= wait <= timedelta(seconds=10)
    row = setup.row()
    assert (row.failures, row.last_error, row.pushed_version) == (1, "HTTP 503: busy", 0)
    assert setup.due() == [], "it waits for the backoff"

    setup.receive(1)
    setup.change()
    [retry] = setup.due(later_by=wait + timedelta(milliseconds=1))
    assert [(i.quantity, i.version) for i in retry.items] == [(8, 2)]
    assert retry.batch.failures == 1
    setup.pushed(retry)
    row = setup.row()
    assert (row.failures, row.last_error, row.pushed_quantity) == (0, None, 8)
