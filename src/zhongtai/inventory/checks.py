"""Input checks shared by the stock use cases: the location and SKUs exist, baskets are sane."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Product, ProductKind, Sku
from zhongtai.core.errors import InvalidInput
from zhongtai.inventory.rules import Line, basket_problems
from zhongtai.stores.models import Location, LocationStatus


def require_location(session: Session, location_id: uuid.UUID, *, open_only: bool = False) -> None:
    status = session.scalar(select(Location.status).where(Location.id == location_id))
    if status is None:
        raise InvalidInput.field("location_id", f"no location {location_id}")
    if open_only and status is not LocationStatus.ACTIVE:
        raise InvalidInput.field("location_id", f"location {location_id} is closed")


def require_basket(lines: Sequence[Line], *, field: str = "lines") -> None:
    problems = basket_problems(lines, field=field)
    if problems:
        raise InvalidInput(
            "; ".join(f"{p.field}: {p.message}" for p in problems),
            errors=[{"field": p.field, "message": p.message} for p in problems],
        )


def sku_kinds(
    session: Session, sku_ids: Sequence[uuid.UUID], *, field: str = "lines"
) -> dict[uuid.UUID, ProductKind]:
    """The product kind of each SKU; 422 naming the first line whose SKU does not exist."""
    rows = session.execute(
        select(Sku.id, Product.kind)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.id.in_(set(sku_ids)))
    )
    kinds = {sku_id: kind for sku_id, kind in rows}
    for i, sku_id in enumerate(sku_ids):
        if sku_id not in kinds:
            raise InvalidInput.field(f"{field}.{i}.sku_id", f"no SKU {sku_id}")
    return kinds


def require_skus(session: Session, sku_ids: Sequence[uuid.UUID], *, field: str = "lines") -> None:
    sku_kinds(session, sku_ids, field=field)


def require_text(value: str | None, field: str, *, max_length: int) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput.field(field, "is required and must not be blank")
    if len(text) > max_length:
        raise InvalidInput.field(field, f"must be at most {max_length} characters")
    return text
