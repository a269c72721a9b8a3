"""Malformed back-office batches: a batch that cannot be read answers 422 saying why, never 500;
a row whose figures are absurd, or whose columns do not say what the sender meant, is rejected
with its line and field, and nothing of it is loaded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from zhongtai.catalog.models import PriceOverride, Sku
from zhongtai.core.auth.roles import Role
from zhongtai.integrations.import_rules import (
    BatchUnreadable,
    check_price_row,
    check_product_row,
    check_stock_row,
    read_batch,
)
from zhongtai.inventory.verify import verify_stock

STOCK_HEADER = "location_code,sku_code,on_hand\n"


@pytest.fixture
def stock(session: Session, factory: Factory) -> StockFactory:
    return StockFactory(session, factory)


@pytest.fixture
def catalog(session: Session, factory: Factory) -> CatalogFactory:
    return CatalogFactory(session, factory)


def _send(
    client: TestClient,
    headers: dict[str, str],
    kind: str,
    batch_id: str,
    content: bytes | str,
    content_type: str = "text/csv",
) -> Any:
    return client.post(
        f"/api/v1/imports/{kind}",
        params={"batch_id": batch_id},
        content=content.encode() if isinstance(content, str) else content,
        headers={**headers, "Content-Type": content_type},
    )


def _unreadable(answer: Any) -> str:
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error["field"] == "body"
    return str(error["message"])


def _problems(row: Any) -> dict[str, str]:
    assert isinstance(row, list), f"accepted: {row}"
    return {p.field: p.message for p in row}


# --- a batch that cannot be read: 422 naming the body, never 500 --------------------------------


def test_a_csv_field_longer_than_the_reader_takes_is_a_422_naming_its_line(
    client: TestClient, factory: Factory
) -> None:
    content = STOCK_HEADER + "DC01,SKU1,1\n" + "DC01," + "x" * 200_000 + ",1\n"
    message = _unreadable(
        _send(client, factory.staff_headers(Role.HQ_ADMIN), "stock", "huge", content)
    )
    assert "line 3" in message


def test_json_nested_beyond_reason_is_a_422_not_a_crash(
    client: TestClient, factory: Factory
) -> None:
    message = _unreadable(
        _send(
            client,
            factory.staff_headers(Role.HQ_ADMIN),
            "stock",
            "deep",
            "[" * 100_000,
            "application/json",
        )
    )
    assert "nested" in message


def test_a_header_naming_a_column_twice_is_refused_rather_than_one_copy_silently_winning() -> None:
    content = b"location_code,sku_code,on_hand,on_hand\nDC01,SKU1,5,500\n"
    with pytest.raises(BatchUnreadable, match=r"on_hand.*twice"):
        read_batch(content, "text/csv")


def test_a_json_object_naming_a_field_twice_is_refused() -> None:
    content = b'[{"location_code": "DC01", "sku_code": "SKU1", "on_hand": 5, "on_hand": 500}]'
    with pytest.raises(BatchUnreadable, match=r"on_hand.*twice"):
        read_batch(content, "application/json")


# --- a row whose columns do not line up: rejected, naming the line --------------------------------


def test_an_unquoted_thousands_separator_does_not_load_a_stock_count_of_one(
    client: TestClient, factory: Factory, stock: StockFactory, session: Session
) -> None:
    dc = stock.location(code="DC01")
    sku = stock.sku()
    stock.receive(dc, sku, 1000)
    session.commit()
    # "1,000" unquoted is two values: the count read as 1 would write 999 units off.
    content = STOCK_HEADER + f"DC01,{sku.code},1,000\n"
    answer = _send(client, factory.staff_headers(Role.HQ_ADMIN), "stock", "comma", content)
    assert answer.status_code == 201, answer.text
    [row] = answer.json()["report"]
    assert row["line"] == 2 and row["outcome"] == "rejected"
    assert "4 values" in row["problems"][0]["message"]
    assert stock.balance(dc, sku).on_hand == 1000  # type: ignore[union-attr]


def test_a_column_the_kind_does_not_have_is_named_rather_than_ignored(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    sku = catalog.sku()
    session.commit()
    # valid_until is not a column: ignored, the promotion price would never end.
    content = f"sku_code,price,valid_until\n{sku.code},500,2026-12-01T00:00:00+08:00\n"
    answer = _send(client, factory.staff_headers(Role.HQ_ADMIN), "prices", "promo", content)
    assert answer.status_code == 201, answer.text
    [row] = answer.json()["report"]
    assert row["outcome"] == "rejected"
    [problem] = row["problems"]
    assert problem["field"] == "valid_until"
    assert "valid_to" in problem["message"], "the columns it may have are listed"
    overrides = select(func.count()).select_from(PriceOverride)
    assert session.scalar(overrides.where(PriceOverride.sku_id == sku.id)) == 0


# --- absurd figures and text: rejected with their field, never a 500 -----------------------------


@pytest.mark.parametrize(
    "on_hand", [10**20, 2**31, "99999999999999999999", "1_000", "１２", " 12 5", True]
)
def test_a_stock_count_that_is_not_a_plain_figure_in_range_is_rejected(on_hand: Any) -> None:
    assert "on_hand" in _problems(
        check_stock_row({"location_code": "DC01", "sku_code": "SKU1", "on_hand": on_hand})
    )


def test_a_stock_count_within_range_loads_as_its_number() -> None:
    row = check_stock_row({"location_code": "DC01", "sku_code": "SKU1", "on_hand": " 10000000 "})
    assert not isinstance(row, list) and row.on_hand == 10_000_000
    plus = check_stock_row({"location_code": "DC01", "sku_code": "SKU1", "on_hand": 0})
    assert not isinstance(plus, list) and plus.on_hand == 0


@pytest.mark.parametrize("price", [1_000_000_001, 99999999999999, -1])
def test_a_price_beyond_what_the_catalog_takes_is_rejected(price: int) -> None:
    assert "price" in _problems(check_price_row({"sku_code": "SKU1", "price": price}))


def test_product_figures_are_bounded_as_the_catalog_api_bounds_them() -> None:
    row = {
        "product_code": "P1",
        "product_name": "梨",
        "category_code": "FRUIT",
        "sku_code": "P1-1",
        "sku_name": "一个",
        "base_price": 10**12,
        "price_per": 10**9,
        "shelf_life_days": 10**6,
    }
    assert set(_problems(check_product_row(row))) == {
        "base_price",
        "price_per",
        "shelf_life_days",
    }


@pytest.mark.parametrize("code", ["DC\x0001", "DC\x1b01", ["DC01"], {"code": "DC01"}])
def test_a_code_with_control_characters_or_that_is_not_text_is_rejected(code: Any) -> None:
    assert "location_code" in _problems(
        check_stock_row({"location_code": code, "sku_code": "SKU1", "on_hand": 1})
    )


def test_absurd_rows_are_rejected_in_the_report_and_the_good_rows_still_load(
    client: TestClient, factory: Factory, stock: StockFactory, session: Session
) -> None:
    dc = stock.location(code="DC01")
    sku = stock.sku()
    stock.receive(dc, sku, 10)
    session.commit()
    rows = [
        {"location_code": "DC01", "sku_code": sku.code, "on_hand": 10**20},
        {"location_code": "DC\u000001", "sku_code": sku.code, "on_hand": 3},
        {"location_code": "DC01", "sku_code": sku.code, "on_hand": 7},
    ]
    answer = _send(
        client,
        factory.staff_headers(Role.HQ_ADMIN),
        "stock",
        "absurd",
        json.dumps(rows),
        "application/json",
    )
    assert answer.status_code == 201, answer.text
    report = answer.json()["report"]
    assert [r["outcome"] for r in report] == ["rejected", "rejected", "adjusted"]
    assert report[0]["problems"][0]["field"] == "on_hand"
    assert report[1]["problems"][0]["field"] == "location_code"
    assert stock.balance(dc, sku).on_hand == 7  # type: ignore[union-attr]
    assert verify_stock(session) == []


def test_an_absurd_price_in_a_product_master_is_rejected_not_a_500(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    catalog.category(code="FRUIT")
    session.commit()
    content = (
        "product_code,product_name,category_code,sku_code,sku_name,base_price\n"
        "PEAR,梨,FRUIT,PEAR-1,一个,99999999999999\n"
    )
    answer = _send(client, factory.staff_headers(Role.HQ_ADMIN), "products", "pear", content)
    assert answer.status_code == 201, answer.text
    [row] = answer.json()["report"]
    assert row["outcome"] == "rejected"
    assert row["problems"][0]["field"] == "base_price"
    assert session.scalar(select(func.count()).select_from(Sku).where(Sku.code == "PEAR-1")) == 0
