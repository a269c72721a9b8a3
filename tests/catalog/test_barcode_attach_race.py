"""On PostgreSQL, a retried barcode attach racing its first try succeeds instead of a 409."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from tests.catalog.conftest import new_ean13
from tests.races import MANY_CONNECTIONS, race_database, until_another_backend_waits_for_a_lock
from zhongtai.catalog import service
from zhongtai.catalog.models import Barcode, ProductKind, SaleUnit
from zhongtai.catalog.service import NewSku
from zhongtai.core.db import Database

pytestmark = MANY_CONNECTIONS


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_barcode_attach", pool_size=4) as database:
        yield database


def test_a_second_attach_of_the_same_code_to_the_same_sku_waits_and_answers_it(
    db: Database,
) -> None:
    with db.writer() as s, s.begin():
        category = service.create_category(s, code="attach", name="attach")
        product = service.create_product(
            s,
            code="ATTACH-P",
            name="attach",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[NewSku(code="ATTACH-SKU", name="x", base_price=100)],
        )
        sku_id = product.skus[0].id
    code = new_ean13()
    first = db.writer()
    first.begin()
    service.add_barcode(first, sku_id, code)
    own_pid = first.execute(text("SELECT pg_backend_pid()")).scalar_one()

    def second() -> tuple[str, object]:
        with db.writer() as s, s.begin():
            barcode = service.add_barcode(s, sku_id, code)
            return barcode.code, barcode.sku_id

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(second)
        until_another_backend_waits_for_a_lock(db, own_pid)
        first.commit()
        first.close()
        assert waiting.result(timeout=30) == (code, sku_id)
    with db.reader() as s:
        assert s.scalar(select(func.count()).where(Barcode.code == code)) == 1
