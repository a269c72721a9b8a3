"""The POS and checkout hot path: SKUs (or a barcode) with effective prices in one statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, Select, String, Uuid, and_, bindparam, exists, literal, or_, select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import (
    Barcode,
    PriceOverride,
    Product,
    ProductKind,
    SaleUnit,
    Sku,
    Symbology,
)
from zhongtai.catalog.rules import (
    EffectivePrice,
    InvalidBarcode,
    PriceCandidate,
    ScaleLabel,
    effective_price,
    price_for_quantity,
    read_scale_label,
    validate_barcode,
)
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.db import UTCDateTime
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.stores.models import Location


@dataclass(frozen=True)
class PriceAudience:
    """Whose price: a store (None: no store's own price) and a channel (None: no channel's)."""

    store_id: uuid.UUID | None
    channel: Channel | None


def price_audience(
    caller: Principal, *, store_id: uuid.UUID | None, channel: Channel | None
) -> PriceAudience:
    """The store and channel a caller sees prices for.

    An API key always sees its own channel's price; a staff user names one with ``channel``.
    Without ``store_id`` a caller bound to exactly one store (a POS key, a clerk of one store)
    sees that store's price; a ``store_id`` outside the caller's stores answers 403.
    """
    if caller.channel is not None:
        if channel is not None and channel != caller.channel:
            raise InvalidInput.field(
                "channel",
                f"an API key sees its own channel's prices ({caller.channel.value}); leave it out",
            )
        channel = caller.channel
    if store_id is None:
        if caller.store_ids is not None and len(caller.store_ids) == 1:
            store_id = next(iter(caller.store_ids))
    else:
        caller.ensure_store(store_id)
    return PriceAudience(store_id=store_id, channel=channel)


@dataclass(frozen=True)
class SkuFacts:
    id: uuid.UUID
    code: str
    name: str
    size: str | None
    colour: str | None
    unit: SaleUnit
    price_per: int
    base_price: int
    currency: str
    is_active: bool


@dataclass(frozen=True)
class ProductFacts:
    id: uuid.UUID
    code: str
    name: str
    brand: str | None
    kind: ProductKind
    category_id: uuid.UUID
    shelf_life_days: int | None
    is_active: bool


@dataclass(frozen=True)
class PricedSku:
    """A SKU and its product with the price that applies for an audience at a moment."""

    sku: SkuFacts
    product: ProductFacts
    price: EffectivePrice
    audience: PriceAudience
    at: datetime

    @property
    def for_sale(self) -> bool:
        return self.sku.is_active and self.product.is_active


@dataclass(frozen=True)
class BarcodeHit:
    """What a scan found. For a scale label: the weight it carries and the price of that weight."""

    code: str
    symbology: Symbology
    priced: PricedSku
    weight_grams: int | None = None
    line_amount: int | None = None


_COLUMNS: tuple[Any, ...] = (
    Sku.id.label("sku_id"),
    Sku.code.label("sku_code"),
    Sku.name.label("sku_name"),
    Sku.size,
    Sku.colour,
    Sku.price_per,
    Sku.base_price,
    Sku.currency,
    Sku.is_active.label("sku_active"),
    Product.id.label("product_id"),
    Product.code.label("product_code"),
    Product.name.label("product_name"),
    Product.brand,
    Product.kind,
    Product.unit,
    Product.category_id,
    Product.shelf_life_days,
    Product.is_active.label("product_active"),
    PriceOverride.id.label("override_id"),
    PriceOverride.price.label("override_price"),
    PriceOverride.store_id.label("override_store_id"),
    PriceOverride.channel.label("override_channel"),
    PriceOverride.valid_from,
    PriceOverride.valid_to,
)


#: What a priced statement selects SKUs by: barcodes, one SKU id, or many SKU ids.
_KEYS = ("codes", "sku_id", "sku_ids")


@lru_cache(maxsize=16)
def _priced_statement(has_store: bool, has_channel: bool, key: str) -> Select[Any]:
    """SKUs joined to their product and left-joined to their candidate price overrides.

    Built once per shape with bound parameters (``at``, ``store_id``, ``channel``, and
    ``codes``, ``sku_id`` or ``sku_ids``): the POS hot path pays neither statement
    construction nor compilation, which SQLAlchemy caches for an identical statement object.
    """
    at = bindparam("at", type_=UTCDateTime())
    store = bindparam("store_id", type_=Uuid())
    channel = bindparam("channel", type_=String())
    candidates = and_(
        PriceOverride.sku_id == Sku.id,
        PriceOverride.valid_from <= at,
        or_(PriceOverride.valid_to.is_(None), PriceOverride.valid_to > at),
        or_(PriceOverride.store_id.is_(None), PriceOverride.store_id == store)
        if has_store
        else PriceOverride.store_id.is_(None),
        or_(PriceOverride.channel.is_(None), PriceOverride.channel == channel)
        if has_channel
        else PriceOverride.channel.is_(None),
    )
    known = exists().where(Location.id == store) if has_store else literal(True)
    extra = (Barcode.code.label("barcode"),) if key == "codes" else ()
    stmt = (
        select(*extra, *_COLUMNS, known.label("store_known"))
        .select_from(Sku)
        .join(Product, Product.id == Sku.product_id)
        .outerjoin(PriceOverride, candidates)
    )
    if key == "codes":
        return stmt.join(Barcode, Barcode.sku_id == Sku.id).where(
            Barcode.code.in_(bindparam("codes", expanding=True))
        )
    if key == "sku_ids":
        return stmt.where(Sku.id.in_(bindparam("sku_ids", type_=Uuid(), expanding=True)))
    return stmt.where(Sku.id == bindparam("sku_id", type_=Uuid()))


def _priced_statement_for(
    audience: PriceAudience, at: datetime, **where: Any
) -> tuple[Select[Any], dict[str, Any]]:
    (key,) = (k for k in _KEYS if k in where)
    stmt = _priced_statement(audience.store_id is not None, audience.channel is not None, key)
    params: dict[str, Any] = {"at": at, **where}
    if audience.store_id is not None:
        params["store_id"] = audience.store_id
    if audience.channel is not None:
        params["channel"] = audience.channel.value
    return stmt, params


def _priced_rows(
    session: Session, audience: PriceAudience, at: datetime, **where: Any
) -> Sequence[Row[Any]]:
    stmt, params = _priced_statement_for(audience, at, **where)
    return session.connection().execute(stmt, params).all()


def _price_rows(rows: Sequence[Row[Any]], audience: PriceAudience, at: datetime) -> PricedSku:
    first = rows[0]
    if not first.store_known:
        raise InvalidInput.field("store_id", f"no store {audience.store_id}")
    candidates = [
        PriceCandidate(
            id=r.override_id,
            price=r.override_price,
            store_id=r.override_store_id,
            channel=Channel(r.override_channel) if r.override_channel else None,
            valid_from=r.valid_from,
            valid_to=r.valid_to,
        )
        for r in rows
        if r.override_id is not None
    ]
    price = effective_price(
        first.base_price,
        candidates,
        channel=audience.channel,
        store_id=audience.store_id,
        at=at,
    )
    sku = SkuFacts(
        id=first.sku_id,
        code=first.sku_code,
        name=first.sku_name,
        size=first.size,
        colour=first.colour,
        unit=first.unit,
        price_per=first.price_per,
        base_price=first.base_price,
        currency=first.currency,
        is_active=first.sku_active,
    )
    product = ProductFacts(
        id=first.product_id,
        code=first.product_code,
        name=first.product_name,
        brand=first.brand,
        kind=first.kind,
        category_id=first.category_id,
        shelf_life_days=first.shelf_life_days,
        is_active=first.product_active,
    )
    return PricedSku(sku=sku, product=product, price=price, audience=audience, at=at)


@dataclass(frozen=True)
class BarcodeQuery:
    """A planned barcode lookup: the one statement to run and what is needed to read its rows."""

    code: str
    symbology: Symbology
    label: ScaleLabel | None
    audience: PriceAudience
    at: datetime
    statement: Select[Any]
    params: dict[str, Any]


def plan_barcode_lookup(
    code: str,
    *,
    caller: Principal,
    store_id: uuid.UUID | None = None,
    channel: Channel | None = None,
    at: datetime | None = None,
) -> BarcodeQuery:
    """Validate the code and the caller's store and channel, and prepare the statement."""
    try:
        symbology = validate_barcode(code)
    except InvalidBarcode as bad:
        raise InvalidInput.field("code", str(bad)) from None
    audience = price_audience(caller, store_id=store_id, channel=channel)
    moment = as_utc(at) if at is not None else utcnow()
    label = read_scale_label(code) if symbology is Symbology.INTERNAL else None
    codes = [code, label.template] if label else [code]
    statement, params = _priced_statement_for(audience, moment, codes=codes)
    return BarcodeQuery(code, symbology, label, audience, moment, statement, params)


def read_barcode_rows(query: BarcodeQuery, rows: Sequence[Row[Any]]) -> BarcodeHit:
    """The hit the statement's rows describe: the exact code, else a priced scale label."""
    exact = [r for r in rows if r.barcode == query.code]
    if exact:
        return BarcodeHit(
            code=query.code,
            symbology=query.symbology,
            priced=_price_rows(exact, query.audience, query.at),
        )
    label = query.label
    if label is not None and rows and rows[0].unit is SaleUnit.GRAM:
        priced = _price_rows(rows, query.audience, query.at)
        amount = price_for_quantity(priced.price.amount, priced.sku.price_per, label.grams)
        return BarcodeHit(
            code=query.code,
            symbology=query.symbology,
            priced=priced,
            weight_grams=label.grams,
            line_amount=amount,
        )
    raise NotFound(f"No SKU carries the barcode {query.code}.", code=query.code)


def lookup_barcode(
    session: Session,
    code: str,
    *,
    caller: Principal,
    store_id: uuid.UUID | None = None,
    channel: Channel | None = None,
    at: datetime | None = None,
) -> BarcodeHit:
    """The SKU a scanned code belongs to, with its product and price, in ONE statement.

    barcode -> sku -> product are joined by primary keys, and the SKU's candidate overrides
    (this store or none, this channel or none, valid at ``at``) are left-joined by their
    (sku_id, store_id, channel) index; :func:`effective_price` then picks among them. A scale
    label (``2F PPPPP WWWWW C``) not registered as such is matched by its item template, in
    the same statement, and priced for the weight it carries. Planning and reading the rows
    are pure, so the same lookup runs on any connection, sync or async.
    """
    query = plan_barcode_lookup(code, caller=caller, store_id=store_id, channel=channel, at=at)
    # Core execution: the statement selects plain columns, so the ORM layer would only cost.
    rows = session.connection().execute(query.statement, query.params).all()
    return read_barcode_rows(query, rows)


def sku_price(
    session: Session,
    sku_id: uuid.UUID,
    *,
    caller: Principal,
    store_id: uuid.UUID | None = None,
    channel: Channel | None = None,
    at: datetime | None = None,
) -> PricedSku:
    """The price of a SKU for a store and channel at a moment (default: now), in one statement."""
    audience = price_audience(caller, store_id=store_id, channel=channel)
    moment = as_utc(at) if at is not None else utcnow()
    rows = _priced_rows(session, audience, moment, sku_id=sku_id)
    if not rows:
        raise NotFound(f"No SKU {sku_id}.")
    return _price_rows(rows, audience, moment)


def sku_prices(
    session: Session,
    sku_ids: Sequence[uuid.UUID],
    *,
    caller: Principal,
    store_id: uuid.UUID | None = None,
    channel: Channel | None = None,
    at: datetime | None = None,
) -> dict[uuid.UUID, PricedSku]:
    """The prices of many SKUs for one store and channel at one moment, in ONE statement.

    Each SKU is priced exactly as :func:`sku_price` prices it; a checkout pays one round trip
    for its basket instead of one per line. Keyed by SKU id in the order given (a repeated id
    once); an unknown SKU answers 404 like :func:`sku_price`.
    """
    audience = price_audience(caller, store_id=store_id, channel=channel)
    moment = as_utc(at) if at is not None else utcnow()
    wanted = list(dict.fromkeys(sku_ids))
    if not wanted:
        return {}
    rows_of: dict[uuid.UUID, list[Row[Any]]] = {}
    for row in _priced_rows(session, audience, moment, sku_ids=wanted):
        rows_of.setdefault(row.sku_id, []).append(row)
    for sku_id in wanted:
        if sku_id not in rows_of:
            raise NotFound(f"No SKU {sku_id}.")
    return {sku_id: _price_rows(rows_of[sku_id], audience, moment) for sku_id in wanted}
