"""Bad text and impossible moments are 422s naming the field, never 500s (PostgreSQL refuses
NUL in text; year 1 at +08:00 has no UTC instant), and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from zhongtai.catalog.models import Category, PriceOverride, Product
from zhongtai.core.auth.roles import Role

B = "/api/v1/catalog"


@pytest.fixture
def safe_client(app: Any) -> TestClient:
    """A client that receives a 500 as the answer instead of raising the bug into the test."""
    return TestClient(app, base_url="http://testserver", raise_server_exceptions=False)


def _problem_fields(r: Any) -> list[str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("name", "花生油\x00"),
        ("name", "花生\n油"),
        ("brand", "\x1b[31m"),
        ("skus.0.name", "5L\x00"),
        ("skus.0.colour", "红\x00"),
        ("skus.0.attributes", {"产地\x00": "山东"}),
        ("skus.0.attributes", {"产地": "山东\x00"}),
        ("description", "good\x00"),
    ],
)
def test_control_characters_in_a_new_product_are_a_422_naming_the_field(
    safe_client: TestClient,
    factory: Factory,
    catalog: CatalogFactory,
    session: Session,
    where: str,
    value: object,
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    category = catalog.category()
    sku: dict[str, Any] = {"code": "NUL-SKU", "name": "5L", "base_price": 100}
    body: dict[str, Any] = {"code": "NUL-P", "name": "花生油", "category_id": str(category.id)}
    if where.startswith("skus.0."):
        sku[where.removeprefix("skus.0.")] = value
    else:
        body[where] = value
    body["skus"] = [sku]
    r = safe_client.post(f"{B}/products", json=body, headers=admin)
    assert any(f.startswith(where) for f in _problem_fields(r)), r.text
    assert session.scalar(select(func.count()).where(Product.code == "NUL-P")) == 0


def test_a_description_may_break_lines_but_not_hold_nul(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    product = catalog.product()
    ok = client.patch(
        f"{B}/products/{product.id}", json={"description": "冷藏\n开封后尽快食用"}, headers=admin
    )
    assert ok.status_code == 200, ok.text
    bad = client.patch(f"{B}/products/{product.id}", json={"description": "x\x00"}, headers=admin)
    assert _problem_fields(bad) == ["description"]


def test_control_characters_in_changes_and_categories_are_422s(
    safe_client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    r = safe_client.patch(f"{B}/skus/{sku.id}", json={"name": "a\x00"}, headers=admin)
    assert _problem_fields(r) == ["name"]
    r = safe_client.patch(f"{B}/products/{sku.product_id}", json={"brand": "a\x00"}, headers=admin)
    assert _problem_fields(r) == ["brand"]
    r = safe_client.post(f"{B}/categories", json={"code": "nul", "name": "水果\x00"}, headers=admin)
    assert _problem_fields(r) == ["name"]
    assert session.scalar(select(func.count()).where(Category.code == "nul")) == 0
    r = safe_client.post(
        f"{B}/skus/{sku.id}/prices", json={"price": 1, "reason": "促销\x00"}, headers=admin
    )
    assert _problem_fields(r) == ["reason"]


def test_control_characters_in_a_search_or_a_barcode_to_detach_are_422s(
    safe_client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    r = safe_client.get(f"{B}/products", params={"q": "油\x00"}, headers=admin)
    assert _problem_fields(r) == ["query.q"]
    r = safe_client.delete(f"{B}/skus/{sku.id}/barcodes/690%00", headers=admin)
    assert _problem_fields(r) == ["path.code"]


@pytest.mark.parametrize(
    "moment",
    ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "0001-01-01T00:00:00+00:00"],
)
def test_a_moment_outside_the_calendar_is_a_422_naming_it(
    safe_client: TestClient,
    factory: Factory,
    catalog: CatalogFactory,
    session: Session,
    moment: str,
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    r = safe_client.get(f"{B}/skus/{sku.id}/price", params={"at": moment}, headers=admin)
    assert _problem_fields(r) == ["query.at"]
    for field in ("valid_from", "valid_to"):
        r = safe_client.post(
            f"{B}/skus/{sku.id}/prices", json={"price": 1, field: moment}, headers=admin
        )
        assert _problem_fields(r) == [field]
    assert session.scalar(select(func.count()).where(PriceOverride.sku_id == sku.id)) == 0
