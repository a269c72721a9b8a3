"""Input checks shared by the stock use cases: the location and SKUs exist, baskets are sane.

Inside :func:`remembering_checks`, a location or SKU found once is not looked up again: an
offline till's batch of hundreds of sales of one store checks its store and SKUs once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Product, ProductKind, Sku
from zhongtai.core.errors import InvalidInput
from zhongtai.inventory.rules import Line, basket_problems
from zhongtai.stores.models import Location, LocationStatus

#: Where :func:`remembering_checks` keeps what it found.
_REMEMBERED = "inventory.checks.remembered"


@dataclass
class _Found:
    locations: dict[uuid.UUID, LocationStatus] = field(default_factory=dict)
    skus: dict[uuid.UUID, ProductKind] = field(default_factory=dict)


@contextmanager
def remembering_checks(session: Session) -> Iterator[None]:
    """Within the block, locations and SKUs found to exist are remembered, with their status
    and kind, and not looked up again.

    For a batch that checks the same store and SKUs sale after sale, in one transaction that
    neither closes stores nor removes SKUs in between. Nested blocks share the outer one's
    memory; only what was found is remembered, so a missing one is refused every time.
    """
    if _REMEMBERED in session.info:
        yield
        return
    session.info[_REMEMBERED] = _Found()
    try:
        yield
    finally:
        del session.info[_REMEMBERED]


def _found(session: Session) -> _Found | None:
    found: _Found | None = session.info.get(_REMEMBERED)
    return found


def require_location(
    session: Session,
    location_id: uuid.UUID,
    *,
    open_only: bool = False,
    field: str = "location_id",
) -> None:
    """422 naming ``field`` when the location does not exist (or, with ``open_only``, is
    closed)."""
    found = _found(session)
    status = found.locations.get(location_id) if found is not None else None
    if status is None:
        status = session.scalar(select(Location.status).where(Location.id == location_id))
        if status is None:
            raise InvalidInput.field(field, f"no location {location_id}")
        if found is not None:
            found.locations[location_id] = status
    if open_only and status is not LocationStatus.ACTIVE:
        raise InvalidInput.field(field, f"location {location_id} is closed")


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
    found = _found(session)
    if found is not None and all(sku_id in found.skus for sku_id in sku_ids):
        return {sku_id: found.skus[sku_id] for sku_id in sku_ids}
    rows = session.execute(
        select(Sku.id, Product.kind)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.id.in_(set(sku_ids)))
    )
    kinds = {sku_id: kind for sku_id, kind in rows}
    if found is not None:
        found.skus.update(kinds)
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
