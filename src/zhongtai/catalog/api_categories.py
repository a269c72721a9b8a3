"""HTTP endpoints of the category tree."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import Depends, Query, status
from sqlalchemy.orm import Session

from zhongtai.catalog import service
from zhongtai.catalog.rules import flatten_category_tree
from zhongtai.catalog.schemas import (
    CategoryCreate,
    CategoryDetail,
    CategoryFlatOut,
    CategoryNodeOut,
    CategoryOut,
    CategoryUpdate,
)
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require

router = api_router(tags=["catalog: categories"])


@router.get("/catalog/categories", response_model=list[CategoryNodeOut] | list[CategoryFlatOut])
def list_categories(
    view: Literal["tree", "flat"] = Query(
        "tree", description="tree: roots with nested children; flat: each parent then its subtree."
    ),
    _: Principal = Depends(require(Permission.CATALOG_READ)),
    session: Session = Depends(db_session),
) -> list[CategoryNodeOut] | list[CategoryFlatOut]:
    """The whole category tree, siblings ordered by code."""
    roots = service.category_tree(session)
    if view == "flat":
        return [
            CategoryFlatOut.model_validate(n, from_attributes=True)
            for n in flatten_category_tree(roots)
        ]
    return [CategoryNodeOut.model_validate(n, from_attributes=True) for n in roots]


@router.get("/catalog/categories/{category_id}", response_model=CategoryDetail)
def get_category(
    category_id: uuid.UUID,
    _: Principal = Depends(require(Permission.CATALOG_READ)),
    session: Session = Depends(db_session),
) -> CategoryDetail:
    """One category with its lineage up to the root."""
    category = service.get_category(session, category_id)
    lineage = service.category_lineage(session, category_id)
    return CategoryDetail(**CategoryOut.model_validate(category).model_dump(), lineage=lineage)


@router.post("/catalog/categories", response_model=CategoryOut, status_code=status.HTTP_201_CREATED)
def create_category(
    body: CategoryCreate,
    _: Principal = Depends(require(Permission.CATALOG_WRITE)),
    session: Session = Depends(db_session),
) -> CategoryOut:
    """A category at the root or under `parent_id`; a taken code answers 409."""
    category = service.create_category(
        session, code=body.code, name=body.name, parent_id=body.parent_id
    )
    return CategoryOut.model_validate(category)


@router.patch("/catalog/categories/{category_id}", response_model=CategoryOut)
def update_category(
    category_id: uuid.UUID,
    body: CategoryUpdate,
    _: Principal = Depends(require(Permission.CATALOG_WRITE)),
    session: Session = Depends(db_session),
) -> CategoryOut:
    """Rename, or move with its subtree (`parent_id`: null for the root). Moving a category
    under itself or one of its descendants answers 409."""
    category = service.update_category(session, category_id, **body.model_dump(exclude_unset=True))
    return CategoryOut.model_validate(category)
