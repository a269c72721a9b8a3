"""The database itself refuses catalog rows that break the rules, whatever code writes them."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category, Product, ProductKind, SaleUnit


def _product(session: Session, **overrides: object) -> Product:
    category = Category(code="CONSTRAINT", name="约束")
    session.add(category)
    session.flush()
    fields: dict[str, object] = {
        "code": "FRESH-NO-LIFE",
        "name": "无保质期的生鲜",
        "category_id": category.id,
        "kind": ProductKind.FRESH,
        "unit": SaleUnit.GRAM,
        "shelf_life_days": None,
    }
    fields.update(overrides)
    return Product(**fields)


def test_a_fresh_product_without_shelf_life_is_refused_by_the_database(session: Session) -> None:
    product = _product(session)
    with pytest.raises(IntegrityError, match="fresh_has_shelf_life"), session.begin_nested():
        session.add(product)
        session.flush()


def test_a_packaged_product_may_have_no_shelf_life(session: Session) -> None:
    product = _product(session, kind=ProductKind.STANDARD, unit=SaleUnit.PIECE, code="PACKED")
    session.add(product)
    session.flush()
    assert product.id is not None
