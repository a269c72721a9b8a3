"""Use cases of the category tree: create, rename, move (never into a cycle), list, lineage."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import CTE, Select, Uuid, bindparam, func, literal, select, text
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category, Product, Sku
from zhongtai.catalog.rules import CategoryNode, build_category_tree
from zhongtai.catalog.unset import UNSET, Unset
from zhongtai.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from zhongtai.core.reference import ReferenceCache
from zhongtai.core.unique import write_unique

MAX_CATEGORY_DEPTH = 16
# Moves of the category tree are rare; on PostgreSQL they queue on this advisory lock so that
# two concurrent moves cannot each pass the cycle check and together close a loop. SQLite
# writers are serialised by BEGIN IMMEDIATE already.
_TREE_LOCK_KEY = zlib.crc32(b"zhongtai.catalog.category_tree")
#: Where :func:`remembering_sku_lineages` keeps what it read: SKU -> lineage (None: unknown).
_REMEMBERED_LINEAGES = "catalog.sku_lineages.remembered"


def category_lineage(session: Session, category_id: uuid.UUID) -> list[uuid.UUID]:
    """The category and its ancestors, nearest first: [self, parent, ..., root]."""
    lineage: list[uuid.UUID] = []
    current: uuid.UUID | None = category_id
    while current is not None and len(lineage) < MAX_CATEGORY_DEPTH:
        parent = session.execute(select(Category.parent_id).where(Category.id == current)).first()
        if parent is None:
            if not lineage:
                raise NotFound(f"No category {category_id}.")
            break
        lineage.append(current)
        current = parent[0]
    return lineage


def _climb(anchor: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """(key, category_id, depth) for the anchor's categories and each of their ancestors.

    ``anchor`` selects (key, category_id); depth 0 is the category itself. Bounded by
    MAX_CATEGORY_DEPTH like :func:`category_lineage`, so a loop in the tree cannot run away.
    """
    up = anchor.add_columns(literal(0).label("depth")).cte("lineage", recursive=True)
    parent = (
        select(up.c.key, Category.parent_id, up.c.depth + 1)
        .join(Category, Category.id == up.c.category_id)
        .where(Category.parent_id.is_not(None), up.c.depth < MAX_CATEGORY_DEPTH - 1)
    )
    up = up.union_all(parent)
    return select(up.c.key, up.c.category_id).order_by(up.c.key, up.c.depth)


@lru_cache(maxsize=2)
def _lineages_statement(of_skus: bool) -> Select[*tuple[Any, ...]]:
    # Built once with an expanding parameter: sourcing asks on every checkout quote.
    ids = bindparam("ids", type_=Uuid(), expanding=True)
    if of_skus:
        anchor = (
            select(Sku.id.label("key"), Product.category_id.label("category_id"))
            .join(Product, Product.id == Sku.product_id)
            .where(Sku.id.in_(ids))
        )
    else:
        anchor = select(Category.id.label("key"), Category.id.label("category_id")).where(
            Category.id.in_(ids)
        )
    return _climb(anchor)


def _lineages(
    session: Session, ids: Collection[uuid.UUID], *, of_skus: bool
) -> dict[uuid.UUID, list[uuid.UUID]]:
    if not ids:
        return {}
    lineages: dict[uuid.UUID, list[uuid.UUID]] = {}
    rows = session.execute(_lineages_statement(of_skus), {"ids": list(set(ids))})
    for key, category_id in rows:
        lineages.setdefault(key, []).append(category_id)
    return lineages


def category_lineages(
    session: Session, category_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """:func:`category_lineage` of many categories in one recursive statement, keyed by
    category; an unknown category is left out."""
    return _lineages(session, category_ids, of_skus=False)


#: SKU -> lineage (None: unknown), kept across requests for as long as the reference
#: generation stays (``zhongtai.core.reference``).
_KEPT_LINEAGES = ReferenceCache(maxsize=200_000)


def sku_category_lineages(
    session: Session, sku_ids: Collection[uuid.UUID], *, generation: int | None = None
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Each SKU's category lineage (its product's category, then its ancestors, nearest
    first) in one recursive statement, keyed by SKU; an unknown SKU is left out.

    Inside :func:`remembering_sku_lineages` only SKUs not asked about before are read. Given
    the reference ``generation`` the caller read, lineages read at that generation before (by
    any request of this process) are not read again.
    """
    remembered: dict[uuid.UUID, list[uuid.UUID] | None] | None = session.info.get(
        _REMEMBERED_LINEAGES
    )
    if remembered is None and generation is None:
        return _lineages(session, sku_ids, of_skus=True)
    if remembered is None:
        remembered = {}
    unread = [x for x in sku_ids if x not in remembered]
    if unread and generation is not None:

        def read_missing(missing: list[Any]) -> dict[Any, list[uuid.UUID] | None]:
            read = _lineages(session, missing, of_skus=True)
            return {sku_id: read.get(sku_id) for sku_id in missing}

        kept = _KEPT_LINEAGES.get_many(session, generation, unread, read_missing)
        remembered.update({sku_id: kept[sku_id] for sku_id in unread})
    elif unread:
        read = _lineages(session, unread, of_skus=True)
        for sku_id in unread:
            remembered[sku_id] = read.get(sku_id)
    return {x: list(lineage) for x in sku_ids if (lineage := remembered[x]) is not None}


@contextmanager
def remembering_sku_lineages(session: Session) -> Iterator[None]:
    """Within the block, :func:`sku_category_lineages` reads each SKU's lineage once.

    A checkout quote asks for its basket's lineages twice in one transaction (the pilot rules
    of sourcing, then the promotions' category scopes) and moves no category in between;
    nothing that changes the tree should run inside the block. Nested blocks share the outer
    one's memory.
    """
    if _REMEMBERED_LINEAGES in session.info:
        yield
        return
    session.info[_REMEMBERED_LINEAGES] = {}
    try:
        yield
    finally:
        del session.info[_REMEMBERED_LINEAGES]


def subtree(category_id: uuid.UUID) -> CTE:
    """A recursive CTE of the category and all its descendants, with ``depth`` below it."""
    top = (
        select(Category.id.label("id"), literal(0).label("depth"))
        .where(Category.id == category_id)
        .cte("category_subtree", recursive=True)
    )
    below = select(Category.id, top.c.depth + 1).where(
        Category.parent_id == top.c.id, top.c.depth < MAX_CATEGORY_DEPTH
    )
    return top.union_all(below)


def get_category(session: Session, category_id: uuid.UUID) -> Category:
    category = session.get(Category, category_id)
    if category is None:
        raise NotFound(f"No category {category_id}.")
    return category


def _existing_parent(session: Session, parent_id: uuid.UUID) -> Category:
    parent = session.get(Category, parent_id)
    if parent is None:
        raise InvalidInput.field("parent_id", f"no category {parent_id}")
    return parent


def _code_taken(session: Session, code: str) -> AlreadyExists | None:
    if session.scalar(select(Category.id).where(Category.code == code)) is None:
        return None
    return AlreadyExists(f"A category with code {code!r} already exists.", code=code)


def create_category(
    session: Session, *, code: str, name: str, parent_id: uuid.UUID | None = None
) -> Category:
    """A new category, at the root or under ``parent_id``; codes are unique."""
    if parent_id is not None:
        _existing_parent(session, parent_id)
        if len(category_lineage(session, parent_id)) >= MAX_CATEGORY_DEPTH:
            raise InvalidInput.field(
                "parent_id", f"the tree is at most {MAX_CATEGORY_DEPTH} levels deep"
            )

    def write() -> Category:
        category = Category(code=code, name=name, parent_id=parent_id)
        session.add(category)
        return category

    return write_unique(session, write, lambda: _code_taken(session, code))


def _lock_tree(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TREE_LOCK_KEY})


def _move(session: Session, category: Category, parent_id: uuid.UUID | None) -> None:
    _lock_tree(session)
    if parent_id is None:
        category.parent_id = None
        return
    _existing_parent(session, parent_id)
    below = subtree(category.id)
    if session.scalar(select(below.c.id).where(below.c.id == parent_id)) is not None:
        where = "itself" if parent_id == category.id else f"its own descendant {parent_id}"
        raise Conflict(
            f"Category {category.code!r} cannot move under {where}: the tree would loop.",
            category_id=str(category.id),
            parent_id=str(parent_id),
        )
    height = session.scalar(select(func.max(below.c.depth))) or 0
    if len(category_lineage(session, parent_id)) + 1 + height > MAX_CATEGORY_DEPTH:
        raise InvalidInput.field(
            "parent_id", f"the tree would be deeper than {MAX_CATEGORY_DEPTH} levels"
        )
    category.parent_id = parent_id


def update_category(
    session: Session,
    category_id: uuid.UUID,
    *,
    name: str | Unset = UNSET,
    parent_id: uuid.UUID | Unset | None = UNSET,
) -> Category:
    """Rename and/or move a category with its subtree; moving under itself or below -> 409."""
    category = get_category(session, category_id)
    if not isinstance(parent_id, Unset) and parent_id != category.parent_id:
        _move(session, category, parent_id)  # first: it waits for the tree lock holding none
    if not isinstance(name, Unset):
        category.name = name
    session.flush()
    return category


def category_tree(session: Session) -> list[CategoryNode]:
    """Every category, nested under its parent, siblings by code."""
    rows = session.execute(
        select(Category.id, Category.code, Category.name, Category.parent_id)
    ).all()
    return build_category_tree(
        CategoryNode(id=r.id, code=r.code, name=r.name, parent_id=r.parent_id) for r in rows
    )


def require_category(session: Session, category_id: uuid.UUID, field: str) -> None:
    """422 naming ``field`` unless the category exists (for references in request bodies)."""
    if session.get(Category, category_id) is None:
        raise InvalidInput.field(field, f"no category {category_id}")
