"""Use cases of SKUs and their barcodes: add a SKU, change it, attach and detach barcodes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, select, true
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Barcode, Product, SaleUnit, Sku
from zhongtai.catalog.rules import (
    InvalidBarcode,
    Problem,
    SkuShape,
    sku_problems,
    validate_barcode,
)
from zhongtai.catalog.unset import UNSET, Unset
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.core.unique import write_unique


@dataclass(frozen=True)
class NewSku:
    """A SKU to create. Prices are fen per ``price_per`` units (1 for pieces)."""

    code: str
    name: str
    base_price: int
    price_per: int | None = None
    size: str | None = None
    colour: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    barcodes: Sequence[str] = ()

    def shape(self) -> SkuShape:
        return SkuShape(
            code=self.code,
            price_per=self.price_per,
            size=self.size,
            colour=self.colour,
            barcodes=tuple(self.barcodes),
        )


def raise_problems(problems: Sequence[Problem]) -> None:
    """One 422 listing every problem found, each naming its field."""
    if problems:
        raise InvalidInput(
            "; ".join(f"{p.field}: {p.message}" for p in problems),
            errors=[{"field": p.field, "message": p.message} for p in problems],
        )


def build_sku(new: NewSku, *, unit: SaleUnit, currency: str) -> Sku:
    """The Sku row (with its barcodes) for an already validated :class:`NewSku`."""
    price_per = new.price_per if new.price_per is not None else 1
    if unit is SaleUnit.PIECE:
        price_per = 1
    return Sku(
        code=new.code,
        name=new.name,
        size=new.size,
        colour=new.colour,
        attributes=dict(new.attributes),
        base_price=new.base_price,
        currency=currency,
        price_per=price_per,
        barcodes=[Barcode(code=c, symbology=validate_barcode(c).value) for c in new.barcodes],
    )


def taken_code(
    session: Session,
    *,
    sku_codes: Iterable[str] = (),
    barcodes: Iterable[str] = (),
    variant: tuple[uuid.UUID, str | None, str | None] | None = None,
    other_than: uuid.UUID | None = None,
) -> AlreadyExists | None:
    """The first of these codes that already exists, as a 409 naming it; None if none does."""
    sku_codes, barcodes = list(sku_codes), list(barcodes)
    # "First" is in the order the caller gave them, whatever order the database finds them in.
    if sku_codes:
        taken = set(session.scalars(select(Sku.code).where(Sku.code.in_(sku_codes))))
        sku = next((code for code in sku_codes if code in taken), None)
        if sku is not None:
            return AlreadyExists(f"SKU code {sku!r} already exists.", code=sku)
    if barcodes:
        owners = dict(
            session.execute(
                select(Barcode.code, Sku.code).join(Sku).where(Barcode.code.in_(barcodes))
            ).all()
        )
        code = next((c for c in barcodes if c in owners), None)
        if code is not None:
            return AlreadyExists(
                f"Barcode {code} already belongs to SKU {owners[code]!r}.", code=code
            )
    if variant is not None:
        product_id, size, colour = variant
        same = session.scalar(
            select(Sku.code).where(
                Sku.product_id == product_id,
                Sku.size == size,
                Sku.colour == colour,
                Sku.id != other_than if other_than is not None else true(),
            )
        )
        if same is not None:
            return AlreadyExists(
                f"Size {size!r} colour {colour!r} already exists as SKU {same!r}.", code=same
            )
    return None


def sku_shape(sku: Sku) -> SkuShape:
    """What the product rules need to know of a stored SKU."""
    return SkuShape(code=sku.code, price_per=sku.price_per, size=sku.size, colour=sku.colour)


def get_sku(session: Session, sku_id: uuid.UUID) -> Sku:
    sku = session.get(Sku, sku_id)
    if sku is None:
        raise NotFound(f"No SKU {sku_id}.")
    return sku


def add_sku(session: Session, product_id: uuid.UUID, new: NewSku, *, currency: str) -> Sku:
    """A further SKU of an existing product (a new size or colour, another pack)."""
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"No product {product_id}.")
    raise_problems(sku_problems(product.kind, product.unit, new.shape()))

    def write() -> Sku:
        sku = build_sku(new, unit=product.unit, currency=currency)
        sku.product_id = product.id
        session.add(sku)
        return sku

    sku = write_unique(
        session,
        write,
        lambda: taken_code(
            session,
            sku_codes=[new.code],
            barcodes=new.barcodes,
            variant=(product.id, new.size, new.colour),
        ),
    )
    session.expire(product, ["skus"])
    return sku


def update_sku(
    session: Session,
    sku_id: uuid.UUID,
    *,
    name: str | Unset = UNSET,
    size: str | Unset | None = UNSET,
    colour: str | Unset | None = UNSET,
    attributes: Mapping[str, str] | Unset = UNSET,
    base_price: int | Unset = UNSET,
    is_active: bool | Unset = UNSET,
) -> Sku:
    """Change a SKU's name, variant, attributes, base price or whether it is sold.

    ``price_per`` and the product's unit are fixed once created: stock quantities and price
    overrides are expressed in them.
    """
    sku = get_sku(session, sku_id)
    if not isinstance(base_price, Unset) and base_price < 0:
        raise InvalidInput.field("base_price", "must be 0 fen or more")
    after = SkuShape(
        code=sku.code,
        price_per=sku.price_per,
        size=sku.size if isinstance(size, Unset) else size,
        colour=sku.colour if isinstance(colour, Unset) else colour,
    )
    raise_problems(sku_problems(sku.product.kind, sku.product.unit, after))

    def write() -> Sku:
        if not isinstance(name, Unset):
            sku.name = name
        sku.size, sku.colour = after.size, after.colour
        if not isinstance(attributes, Unset):
            sku.attributes = dict(attributes)
        if not isinstance(base_price, Unset):
            sku.base_price = base_price
        if not isinstance(is_active, Unset):
            sku.is_active = is_active
        return sku

    return write_unique(
        session,
        write,
        lambda: taken_code(
            session, variant=(sku.product_id, after.size, after.colour), other_than=sku.id
        ),
    )


def add_barcode(session: Session, sku_id: uuid.UUID, code: str) -> Barcode:
    """Attach another barcode to a SKU; a code belongs to one SKU only: another SKU's code
    answers 409. Attaching a code the SKU already carries changes nothing and answers it, so
    that a retried attach (its first answer lost) succeeds like the first."""
    try:
        symbology = validate_barcode(code)
    except InvalidBarcode as bad:
        raise InvalidInput.field("code", str(bad)) from None
    sku = get_sku(session, sku_id)
    carried = next((b for b in sku.barcodes if b.code == code), None)
    if carried is not None:
        return carried

    def write() -> Barcode:
        barcode = Barcode(code=code, sku_id=sku.id, symbology=symbology.value)
        session.add(barcode)
        return barcode

    def explain() -> AlreadyExists | None:
        owner = session.scalar(select(Barcode.sku_id).where(Barcode.code == code))
        if owner == sku.id:
            return _AlreadyCarried(code)
        return taken_code(session, barcodes=[code])

    try:
        barcode = write_unique(session, write, explain)
    except _AlreadyCarried:  # attached by a twin request that committed meanwhile
        carried = session.get(Barcode, code)
        assert carried is not None  # explain() just found it, in this transaction
        return carried
    session.expire(sku, ["barcodes"])
    return barcode


class _AlreadyCarried(AlreadyExists):
    """The barcode to attach is the SKU's own already: not an error for the caller."""

    def __init__(self, code: str) -> None:
        super().__init__(f"Barcode {code} is this SKU's already.", code=code)


def remove_barcode(session: Session, sku_id: uuid.UUID, code: str) -> None:
    """Detach a barcode from a SKU; 404 if the SKU does not carry it."""
    sku = get_sku(session, sku_id)
    removed = session.execute(
        delete(Barcode).where(Barcode.code == code, Barcode.sku_id == sku.id)
    ).rowcount  # type: ignore[attr-defined]
    if removed == 0:
        raise NotFound(f"SKU {sku.code!r} has no barcode {code!r}.")
    session.expire(sku, ["barcodes"])
