"""Upgrading gives the batches loaded before the stores their reports show, so that each store
goes on reading its own batches and no other's, on the engine under test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from tests.migrating import database_at
from zhongtai.core import migrate
from zhongtai.core.db import Database, create_db_engine
from zhongtai.core.ids import new_id
from zhongtai.integrations.import_models import ImportBatch

BEFORE = "0022_substitute_returns"
AFTER = "0023_import_batch_stores"
_LINKS = sa.table(
    "import_batch_stores", sa.column("batch_id", sa.Uuid()), sa.column("store_id", sa.Uuid())
)


@pytest.fixture
def url_before(tmp_path: Path) -> Iterator[str]:
    with database_at(BEFORE, tmp_path, "import_stores") as url:
        yield url


def _batch(batch_id: str, kind: str, report: list[dict[str, object]]) -> ImportBatch:
    return ImportBatch(
        id=new_id(),
        batch_id=batch_id,
        kind=kind,
        fingerprint=batch_id,
        rows_total=len(report),
        rows_loaded=len(report),
        rows_rejected=0,
        report=report,
        actor=None,
    )


def test_earlier_batches_belong_to_the_stores_their_reports_show(url_before: str) -> None:
    db = Database.connect(url_before, pool_size=1, max_overflow=0)
    try:
        with db.writer() as s:
            factory = Factory(s)
            one, two, three = factory.location(), factory.location(), factory.location()
            catalog = CatalogFactory(s, factory)
            sku = catalog.sku()
            override = catalog.override(sku, 990, store=three)
            chain_wide = catalog.override(sku, 980)
            stock = _batch(
                "old-stock",
                "stock",
                [
                    {"line": 2, "outcome": "adjusted", "location": one.code, "sku": sku.code},
                    {"line": 3, "outcome": "unchanged", "location": two.code, "sku": sku.code},
                    {"line": 4, "outcome": "rejected", "problems": []},
                ],
            )
            prices = _batch(
                "old-prices",
                "prices",
                [
                    {"line": 2, "outcome": "created", "price_override_id": str(override.id)},
                    {"line": 3, "outcome": "created", "price_override_id": str(chain_wide.id)},
                ],
            )
            products = _batch("old-products", "products", [{"line": 2, "outcome": "created"}])
            s.add_all([stock, prices, products])
            s.commit()
            ids = {b.batch_id: b.id for b in (stock, prices, products)}
            stores = {one.id: "one", two.id: "two", three.id: "three"}
    finally:
        db.dispose()

    migrate.upgrade(url_before, AFTER)
    engine = create_db_engine(url_before)
    try:
        with engine.connect() as conn:
            links = conn.execute(sa.select(_LINKS.c.batch_id, _LINKS.c.store_id)).all()
    finally:
        engine.dispose()
    by_batch: dict[uuid.UUID, set[str]] = {}
    for batch_id, store_id in links:
        by_batch.setdefault(batch_id, set()).add(stores[store_id])
    assert by_batch == {ids["old-stock"]: {"one", "two"}, ids["old-prices"]: {"three"}}

    migrate.downgrade(url_before, BEFORE)
    migrate.upgrade(url_before, AFTER)
