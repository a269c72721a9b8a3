"""Request and response bodies of the catalog endpoints."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from zhongtai.catalog.lookup import BarcodeHit, PricedSku
from zhongtai.catalog.models import PriceOverride, Product, ProductKind, SaleUnit, Sku, Symbology
from zhongtai.catalog.rules import (
    MAX_PRICE_FEN,
    EffectivePrice,
    OverrideStatus,
    PriceScope,
    override_status,
)
from zhongtai.catalog.rules import validate_barcode as _validate_barcode
from zhongtai.catalog.skus import NewSku
from zhongtai.core.auth.roles import Channel
from zhongtai.core.moments import Moment as Moment  # re-exported for the price endpoints
from zhongtai.core.money import Money
from zhongtai.core.text import NoteText, PlainText

_CODE = re.compile(r"[\x21-\x7e]+")


def _barcode(code: str) -> str:
    _validate_barcode(code)  # its InvalidBarcode is a ValueError: a 422 naming the field
    return code


def _code(code: str) -> str:
    if not _CODE.fullmatch(code):
        raise ValueError("must be letters, digits or ASCII punctuation, without spaces")
    return code


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be left out but not set to null")
    return value


BarcodeCode = Annotated[
    str, AfterValidator(_barcode), Field(examples=["6901234567892"], max_length=32)
]
Code = Annotated[str, AfterValidator(_code), Field(min_length=1, max_length=64)]
Fen = Annotated[int, Field(ge=0, le=MAX_PRICE_FEN, description="Integer fen (分).")]


class CategoryCreate(BaseModel):
    code: Annotated[str, AfterValidator(_code)] = Field(
        min_length=1, max_length=32, examples=["fruit"]
    )
    name: PlainText = Field(min_length=1, max_length=100, examples=["水果"])
    parent_id: uuid.UUID | None = Field(default=None, description="null or absent: a root.")


class CategoryUpdate(BaseModel):
    name: PlainText | None = Field(default=None, min_length=1, max_length=100)
    parent_id: uuid.UUID | None = Field(
        default=None, description="Move under this category; null: to the root; absent: stay."
    )

    check_not_null = field_validator("name")(_not_null)


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    parent_id: uuid.UUID | None


class CategoryDetail(CategoryOut):
    lineage: list[uuid.UUID] = Field(description="This category and its ancestors, nearest first.")


class CategoryFlatOut(CategoryOut):
    depth: int = Field(description="0 for a root.")


class CategoryNodeOut(CategoryOut):
    children: list[CategoryNodeOut]


class SkuCreate(BaseModel):
    code: Code
    name: PlainText = Field(min_length=1, max_length=200)
    size: PlainText | None = Field(default=None, min_length=1, max_length=32)
    colour: PlainText | None = Field(default=None, min_length=1, max_length=32)
    attributes: dict[PlainText, PlainText] = Field(default_factory=dict, max_length=50)
    base_price: Fen = Field(description="Fen per `price_per` units.")
    price_per: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Units the price is for: 1 for pieces (the default); for weighed goods "
        "the grams, e.g. 500 for a price per jin (斤).",
    )
    barcodes: list[BarcodeCode] = Field(default_factory=list, max_length=20)

    def to_new_sku(self) -> NewSku:
        return NewSku(**self.model_dump())


class ProductCreate(BaseModel):
    code: Code
    name: PlainText = Field(min_length=1, max_length=200)
    brand: PlainText | None = Field(default=None, max_length=100)
    category_id: uuid.UUID
    kind: ProductKind = ProductKind.STANDARD
    unit: SaleUnit = Field(default=SaleUnit.PIECE, description="piece, or gram for weighed goods")
    shelf_life_days: int | None = Field(
        default=None, ge=1, le=36_500, description="Required for kind=fresh."
    )
    description: NoteText | None = Field(default=None, max_length=4000)
    skus: list[SkuCreate] = Field(min_length=1, max_length=200)


class ProductUpdate(BaseModel):
    name: PlainText | None = Field(default=None, min_length=1, max_length=200)
    brand: PlainText | None = Field(default=None, max_length=100)
    category_id: uuid.UUID | None = None
    kind: ProductKind | None = None
    shelf_life_days: int | None = Field(default=None, ge=1, le=36_500)
    description: NoteText | None = Field(default=None, max_length=4000)
    is_active: bool | None = None

    check_not_null = field_validator("name", "category_id", "kind", "is_active")(_not_null)


class SkuUpdate(BaseModel):
    name: PlainText | None = Field(default=None, min_length=1, max_length=200)
    size: PlainText | None = Field(default=None, min_length=1, max_length=32)
    colour: PlainText | None = Field(default=None, min_length=1, max_length=32)
    attributes: dict[PlainText, PlainText] | None = Field(default=None, max_length=50)
    base_price: Fen | None = None
    is_active: bool | None = None

    check_not_null = field_validator("name", "attributes", "base_price", "is_active")(_not_null)


class BarcodeCreate(BaseModel):
    code: BarcodeCode


class BarcodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    symbology: Symbology


class SkuOut(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    code: str
    name: str
    size: str | None
    colour: str | None
    attributes: dict[str, str]
    unit: SaleUnit
    price_per: int
    base_price: Money = Field(description="Per `price_per` units.")
    is_active: bool
    barcodes: list[BarcodeOut]

    @classmethod
    def of(cls, sku: Sku) -> SkuOut:
        return cls(
            id=sku.id,
            product_id=sku.product_id,
            code=sku.code,
            name=sku.name,
            size=sku.size,
            colour=sku.colour,
            attributes=sku.attributes,
            unit=sku.product.unit,
            price_per=sku.price_per,
            base_price=Money.fen(sku.base_price, sku.currency),
            is_active=sku.is_active,
            barcodes=[BarcodeOut.model_validate(b) for b in sku.barcodes],
        )


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    brand: str | None
    category_id: uuid.UUID
    kind: ProductKind
    unit: SaleUnit
    shelf_life_days: int | None
    description: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class ProductDetail(ProductOut):
    skus: list[SkuOut]

    @classmethod
    def of(cls, product: Product) -> ProductDetail:
        base = ProductOut.model_validate(product).model_dump()
        return cls(**base, skus=[SkuOut.of(s) for s in product.skus])


class PriceOverrideCreate(BaseModel):
    price: Fen = Field(description="Fen per the SKU's `price_per` units.")
    store_id: uuid.UUID | None = Field(default=None, description="null: every store.")
    channel: Channel | None = Field(default=None, description="null: every channel.")
    valid_from: Moment | None = Field(default=None, description="Default: now.")
    valid_to: Moment | None = Field(default=None, description="Exclusive; null: open.")
    reason: PlainText | None = Field(default=None, max_length=200, examples=["周末促销"])


class PriceOverrideOut(BaseModel):
    id: uuid.UUID
    sku_id: uuid.UUID
    price: Money
    store_id: uuid.UUID | None
    channel: Channel | None
    valid_from: datetime
    valid_to: datetime | None
    reason: str | None
    status: OverrideStatus = Field(description="At the time of the response.")
    created_at: datetime

    @classmethod
    def of(cls, override: PriceOverride, now: datetime) -> PriceOverrideOut:
        return cls(
            id=override.id,
            sku_id=override.sku_id,
            price=Money.fen(override.price, override.currency),
            store_id=override.store_id,
            channel=Channel(override.channel) if override.channel else None,
            valid_from=override.valid_from,
            valid_to=override.valid_to,
            reason=override.reason,
            status=override_status(override.valid_from, override.valid_to, now),
            created_at=override.created_at,
        )


class PriceSourceOut(BaseModel):
    kind: Literal["base", "override"]
    override_id: uuid.UUID | None
    scope: PriceScope = Field(description="store_channel, store, channel, chain or base.")

    @classmethod
    def of(cls, price: EffectivePrice) -> PriceSourceOut:
        kind: Literal["base", "override"] = "base" if price.override_id is None else "override"
        return cls(kind=kind, override_id=price.override_id, scope=price.scope)


class SkuPriceOut(BaseModel):
    sku_id: uuid.UUID
    price: Money = Field(description="Per `price_per` units.")
    price_per: int
    unit: SaleUnit
    price_source: PriceSourceOut
    store_id: uuid.UUID | None
    channel: Channel | None
    at: datetime

    @classmethod
    def of(cls, priced: PricedSku) -> SkuPriceOut:
        return cls(
            sku_id=priced.sku.id,
            price=Money.fen(priced.price.amount, priced.sku.currency),
            price_per=priced.sku.price_per,
            unit=priced.sku.unit,
            price_source=PriceSourceOut.of(priced.price),
            store_id=priced.audience.store_id,
            channel=priced.audience.channel,
            at=priced.at,
        )


class LookupSkuOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    size: str | None
    colour: str | None
    unit: SaleUnit
    price_per: int


class LookupProductOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    brand: str | None
    kind: ProductKind
    category_id: uuid.UUID
    shelf_life_days: int | None


class BarcodeLookupOut(BaseModel):
    code: str
    symbology: Symbology
    sku: LookupSkuOut
    product: LookupProductOut
    price: Money = Field(description="Effective for the store and channel, per `price_per`.")
    price_source: PriceSourceOut
    store_id: uuid.UUID | None
    channel: Channel | None
    for_sale: bool = Field(description="false: the SKU or its product is deactivated.")
    weight_grams: int | None = Field(description="Carried by a scale label; else null.")
    line_price: Money | None = Field(description="The price of that weight; else null.")

    @classmethod
    def of(cls, hit: BarcodeHit) -> BarcodeLookupOut:
        priced, currency = hit.priced, hit.priced.sku.currency
        return cls(
            code=hit.code,
            symbology=hit.symbology,
            sku=LookupSkuOut.model_validate(priced.sku, from_attributes=True),
            product=LookupProductOut.model_validate(priced.product, from_attributes=True),
            price=Money.fen(priced.price.amount, currency),
            price_source=PriceSourceOut.of(priced.price),
            store_id=priced.audience.store_id,
            channel=priced.audience.channel,
            for_sale=priced.for_sale,
            weight_grams=hit.weight_grams,
            line_price=Money.fen(hit.line_amount, currency)
            if hit.line_amount is not None
            else None,
        )
