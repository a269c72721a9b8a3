"""A price list's window is read as the price API reads it: a moment with an offset, inside the
calendar every later reckoning survives. A row at either end of the calendar is rejected naming
its column; it never reaches the catalog to overflow there."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from zhongtai.catalog.models import PriceOverride
from zhongtai.core.auth.roles import Channel
from zhongtai.integrations.import_rules import check_price_row

FAR_ENDS = [
    pytest.param("0001-01-01T00:00:00+08:00", id="year-1-east-of-utc"),
    pytest.param("0001-01-01T00:00:00+00:00", id="year-1-in-utc"),
    pytest.param("1899-12-31T23:59:59+00:00", id="before-1900"),
    pytest.param("9000-01-01T00:00:00+00:00", id="from-9000"),
    pytest.param("9999-12-31T23:59:59-08:00", id="year-9999-west-of-utc"),
]


@pytest.fixture
def catalog(session: Session, factory: Factory) -> CatalogFactory:
    return CatalogFactory(session, factory)


def _problems(checked: Any) -> dict[str, str]:
    assert isinstance(checked, list), f"the row was taken: {checked}"
    return {p.field: p.message for p in checked}


@pytest.mark.parametrize("column", ["valid_from", "valid_to"])
@pytest.mark.parametrize("moment", FAR_ENDS)
def test_a_price_window_at_the_ends_of_the_calendar_is_a_row_problem_naming_the_column(
    column: str, moment: str
) -> None:
    problems = _problems(check_price_row({"sku_code": "SKU1", "price": 990, column: moment}))
    assert list(problems) == [column]
    assert "1900-01-01" in problems[column] and "9000-01-01" in problems[column]


def test_a_price_window_inside_the_calendar_is_taken_to_the_second() -> None:
    row = check_price_row(
        {
            "sku_code": "SKU1",
            "price": 990,
            "valid_from": "1900-01-01T00:00:00+00:00",
            "valid_to": "8999-12-31T23:59:59+00:00",
        }
    )
    assert not isinstance(row, list)
    assert row.valid_from is not None and row.valid_from.year == 1900
    assert row.valid_to is not None and row.valid_to.year == 8999


def test_a_moment_without_offset_is_still_a_row_problem_saying_so() -> None:
    problems = _problems(
        check_price_row({"sku_code": "SKU1", "price": 990, "valid_to": "2026-12-01T00:00:00"})
    )
    assert problems == {"valid_to": "must include a UTC offset"}


@pytest.mark.parametrize("moment", FAR_ENDS)
def test_a_price_list_with_a_window_off_the_calendar_rejects_that_row_and_loads_the_rest(
    client: TestClient,
    factory: Factory,
    catalog: CatalogFactory,
    session: Session,
    moment: str,
) -> None:
    far, near = catalog.sku(), catalog.sku()
    session.commit()
    content = (
        "sku_code,price,valid_from,valid_to\n"
        f"{far.code},990,{moment},\n"
        f"{far.code},980,,{moment}\n"
        f"{near.code},970,2026-12-01T00:00:00+08:00,2027-01-01T00:00:00+08:00\n"
    )
    answer = client.post(
        "/api/v1/imports/prices",
        params={"batch_id": "far-ends"},
        content=content.encode(),
        headers={**factory.api_key_headers(Channel.ERP), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 201, answer.text
    report = answer.json()["report"]
    assert [r["outcome"] for r in report] == ["rejected", "rejected", "created"]
    assert [p["field"] for p in report[0]["problems"]] == ["valid_from"]
    assert [p["field"] for p in report[1]["problems"]] == ["valid_to"]
    loaded = session.scalars(select(PriceOverride).where(PriceOverride.sku_id == far.id)).all()
    assert loaded == []
    [kept] = session.scalars(select(PriceOverride).where(PriceOverride.sku_id == near.id)).all()
    assert kept.price == 970
