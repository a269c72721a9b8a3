"""Use cases of products: create one with its SKUs and barcodes, change it, find and list them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, lazyload

from zhongtai.catalog.categories import require_category, subtree
from zhongtai.catalog.models import Barcode, Product, ProductKind, SaleUnit, Sku
from zhongtai.catalog.rules import new_product_problems, product_problems, sku_problems
from zhongtai.catalog.skus import NewSku, build_sku, raise_problems, sku_shape, taken_code
from zhongtai.catalog.unset import UNSET, Unset
from zhongtai.core.errors import AlreadyExists, Conflict, NotFound
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.core.unique import write_unique


def create_product(
    session: Session,
    *,
    code: str,
    name: str,
    category_id: uuid.UUID,
    kind: ProductKind,
    unit: SaleUnit,
    currency: str,
    skus: Sequence[NewSku],
    brand: str | None = None,
    shelf_life_days: int | None = None,
    description: str | None = None,
) -> Product:
    """A product with its SKUs and their barcodes, all or nothing.

    A taken product code, SKU code or barcode answers 409 naming it; the unique constraints
    decide, so two requests racing for one code cannot both succeed.
    """
    raise_problems(new_product_problems(kind, unit, shelf_life_days, [s.shape() for s in skus]))
    require_category(session, category_id, "category_id")

    def write() -> Product:
        product = Product(
            code=code,
            name=name,
            brand=brand,
            category_id=category_id,
            kind=kind,
            unit=unit,
            shelf_life_days=shelf_life_days,
            description=description,
            skus=[build_sku(s, unit=unit, currency=currency) for s in skus],
        )
        session.add(product)
        return product

    def explain() -> AlreadyExists | None:
        if session.scalar(select(Product.id).where(Product.code == code)) is not None:
            return AlreadyExists(f"A product with code {code!r} already exists.", code=code)
        return taken_code(
            session,
            sku_codes=[s.code for s in skus],
            barcodes=[b for s in skus for b in s.barcodes],
        )

    return write_unique(session, write, explain)


def get_product(session: Session, product_id: uuid.UUID) -> Product:
    """A product with its SKUs and their barcodes."""
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"No product {product_id}.")
    return product


def update_product(
    session: Session,
    product_id: uuid.UUID,
    *,
    name: str | Unset = UNSET,
    brand: str | Unset | None = UNSET,
    category_id: uuid.UUID | Unset = UNSET,
    kind: ProductKind | Unset = UNSET,
    shelf_life_days: int | Unset | None = UNSET,
    description: str | Unset | None = UNSET,
    is_active: bool | Unset = UNSET,
) -> Product:
    """Change a product's description, category, kind or whether it is sold.

    The sale unit is fixed once created: stock is counted in it. Making a product apparel
    needs every SKU to name its size and colour (else 409).
    """
    product = get_product(session, product_id)
    new_kind = product.kind if isinstance(kind, Unset) else kind
    new_life = product.shelf_life_days if isinstance(shelf_life_days, Unset) else shelf_life_days
    raise_problems(product_problems(new_kind, new_life))
    if new_kind is not product.kind:
        for sku in product.skus:
            if sku_problems(new_kind, product.unit, sku_shape(sku)):
                raise Conflict(
                    f"The product cannot become {new_kind.value}: SKU {sku.code!r} does not "
                    "fit it (apparel SKUs need a size and a colour)."
                )
    if not isinstance(category_id, Unset):
        require_category(session, category_id, "category_id")
        product.category_id = category_id
    if not isinstance(name, Unset):
        product.name = name
    if not isinstance(brand, Unset):
        product.brand = brand
    if not isinstance(description, Unset):
        product.description = description
    if not isinstance(is_active, Unset):
        product.is_active = is_active
    product.kind, product.shelf_life_days = new_kind, new_life
    session.flush()
    return product


def _contains(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def product_query(
    session: Session,
    *,
    category_id: uuid.UUID | None = None,
    q: str | None = None,
    kind: ProductKind | None = None,
    is_active: bool | None = None,
) -> Select[Product]:
    """Products matching the filters; ``category_id`` includes every category below it."""
    stmt = select(Product).options(lazyload(Product.skus))
    if category_id is not None:
        require_category(session, category_id, "category_id")
        below = subtree(category_id)
        stmt = stmt.where(Product.category_id.in_(select(below.c.id)))
    if q:
        pattern = _contains(q)
        matching_skus = select(Sku.product_id).where(
            or_(
                Sku.code.ilike(pattern, escape="\\"),
                Sku.id.in_(select(Barcode.sku_id).where(Barcode.code == q)),
            )
        )
        stmt = stmt.where(
            or_(
                Product.name.ilike(pattern, escape="\\"),
                Product.code.ilike(pattern, escape="\\"),
                Product.id.in_(matching_skus),
            )
        )
    if kind is not None:
        stmt = stmt.where(Product.kind == kind)
    if is_active is not None:
        stmt = stmt.where(Product.is_active == is_active)
    return stmt


def list_products(
    session: Session,
    page: PageParams,
    *,
    category_id: uuid.UUID | None = None,
    q: str | None = None,
    kind: ProductKind | None = None,
    is_active: bool | None = None,
) -> tuple[list[Product], str | None]:
    """One page of products, oldest first, and the cursor of the next page."""
    stmt = product_query(session, category_id=category_id, q=q, kind=kind, is_active=is_active)
    return paginate(session, stmt, [Product.id], page)
