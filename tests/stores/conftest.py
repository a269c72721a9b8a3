"""Builders the stores tests share: category trees for pilot rules by category."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category

_seq = itertools.count(1)

MakeCategory = Callable[..., Category]


@pytest.fixture
def make_category(session: Session) -> MakeCategory:
    """Adds a category (optionally under a parent) straight to the table, as test data."""

    def make(name: str, parent: Category | None = None) -> Category:
        category = Category(
            code=f"C{next(_seq):04d}-{uuid.uuid4().hex[:6]}",
            name=name,
            parent_id=parent.id if parent else None,
        )
        session.add(category)
        session.flush()
        return category

    return make
