"""Use cases of the catalog: categories, products and SKUs, barcodes, prices and lookups."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category
from zhongtai.core.errors import NotFound

MAX_CATEGORY_DEPTH = 16


def category_lineage(session: Session, category_id: uuid.UUID) -> list[uuid.UUID]:
    """The category and its ancestors, nearest first: [self, parent, ..., root]."""
    lineage: list[uuid.UUID] = []
    current: uuid.UUID | None = category_id
    while current is not None and len(lineage) < MAX_CATEGORY_DEPTH:
        parent = session.execute(
            select(Category.parent_id).where(Category.id == current)
        ).first()
        if parent is None:
            if not lineage:
                raise NotFound(f"No category {category_id}.")
            break
        lineage.append(current)
        current = parent[0]
    return lineage
