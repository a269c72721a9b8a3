"""Tables of categories, products, SKUs, barcodes and price overrides."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum


class ProductKind(StrEnum):
    STANDARD = "standard"
    FRESH = "fresh"
    APPAREL = "apparel"


class SaleUnit(StrEnum):
    PIECE = "piece"
    GRAM = "gram"


class Symbology(StrEnum):
    """How a barcode is encoded (stored as the value). ``internal``: EAN-13 with prefix 2."""

    EAN13 = "ean13"
    EAN8 = "ean8"
    INTERNAL = "internal"


class Category(IdMixin, TimestampMixin, Base):
    """A node of the category tree; roots have no parent. The tree never holds a cycle."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"), index=True)


class Product(IdMixin, TimestampMixin, Base):
    """What a customer would call one product (款/SPU); sold as one or more SKUs."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint(
            "shelf_life_days IS NULL OR shelf_life_days > 0", name="shelf_life_positive"
        ),
        CheckConstraint(
            "kind <> 'fresh' OR shelf_life_days IS NOT NULL", name="fresh_has_shelf_life"
        ),
    )

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str | None] = mapped_column(String(100))
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id"), index=True)
    kind: Mapped[ProductKind] = mapped_column(str_enum(ProductKind, length=16))
    unit: Mapped[SaleUnit] = mapped_column(str_enum(SaleUnit, length=16))
    shelf_life_days: Mapped[int | None]
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)

    skus: Mapped[list[Sku]] = relationship(
        back_populates="product", lazy="selectin", order_by="Sku.code"
    )


class Sku(IdMixin, TimestampMixin, Base):
    """The unit of stock and sale. Weighed goods count grams and are priced per ``price_per``."""

    __tablename__ = "skus"
    __table_args__ = (
        CheckConstraint("base_price >= 0", name="base_price_not_negative"),
        CheckConstraint("price_per > 0", name="price_per_positive"),
        UniqueConstraint("product_id", "size", "colour"),
    )

    code: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    size: Mapped[str | None] = mapped_column(String(32))
    colour: Mapped[str | None] = mapped_column(String(32))
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    base_price: Mapped[int] = mapped_column(doc="fen per `price_per` units")
    currency: Mapped[str] = mapped_column(String(3))
    price_per: Mapped[int] = mapped_column(
        default=1, doc="Units the price is for: 1 for pieces, e.g. 500 (one jin) for grams."
    )
    is_active: Mapped[bool] = mapped_column(default=True)

    product: Mapped[Product] = relationship(back_populates="skus")
    barcodes: Mapped[list[Barcode]] = relationship(
        back_populates="sku",
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="Barcode.code",
    )


class Barcode(Base):
    """A scannable code of a SKU. A SKU can carry several (case, inner pack, old labels)."""

    __tablename__ = "barcodes"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"), index=True)
    symbology: Mapped[Symbology] = mapped_column(str_enum(Symbology, length=16))

    sku: Mapped[Sku] = relationship(back_populates="barcodes")


class PriceOverride(IdMixin, TimestampMixin, Base):
    """A price for one SKU on a channel and/or in a store, valid within a time window."""

    __tablename__ = "price_overrides"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="window_ordered"),
        Index("ix_price_overrides_sku_scope", "sku_id", "store_id", "channel"),
    )

    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"))
    channel: Mapped[str | None] = mapped_column(
        String(20), doc="a zhongtai.core.auth.roles.Channel value; null: every channel"
    )
    store_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("locations.id"), doc="null: every store"
    )
    price: Mapped[int] = mapped_column(doc="fen per the SKU's `price_per` units")
    currency: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(200))
