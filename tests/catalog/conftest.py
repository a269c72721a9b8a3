"""Catalog builders (through the services) and barcode helpers for the catalog tests."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

import pytest
from sqlalchemy.orm import Session
from stdnum import ean

from tests.factories import Factory
from zhongtai.catalog import service
from zhongtai.catalog.models import Category, PriceOverride, Product, ProductKind, SaleUnit, Sku
from zhongtai.catalog.service import NewSku
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission, Role
from zhongtai.stores.models import Location

_seq = itertools.count(1)

HQ = Principal(
    kind="staff",
    id=uuid.UUID(int=1),
    name="hq",
    permissions=frozenset(Permission),
    store_ids=None,
    role=Role.HQ_ADMIN,
)


def with_check_digit(stem: str) -> str:
    """A valid EAN-13 or EAN-8 from its first 12 or 7 digits."""
    return stem + ean.calc_check_digit(stem)


def new_ean13(prefix: str = "690") -> str:
    """A fresh, valid EAN-13 (690-699: China) no other call of this run hands out."""
    return with_check_digit(f"{prefix}{next(_seq):0{12 - len(prefix)}d}")


def wrong_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


class CatalogFactory:
    def __init__(self, session: Session, factory: Factory) -> None:
        self.session = session
        self.factory = factory

    def category(self, *, parent: Category | None = None, code: str | None = None) -> Category:
        n = next(_seq)
        category = service.create_category(
            self.session,
            code=code or f"C{n}",
            name=f"品类 {n}",
            parent_id=parent.id if parent else None,
        )
        self.session.commit()
        return category

    def product(
        self,
        *,
        category: Category | None = None,
        kind: ProductKind = ProductKind.STANDARD,
        unit: SaleUnit = SaleUnit.PIECE,
        skus: list[NewSku] | None = None,
        shelf_life_days: int | None = None,
        name: str | None = None,
    ) -> Product:
        n = next(_seq)
        if skus is None:
            skus = [self.new_sku(price_per=500 if unit is SaleUnit.GRAM else None)]
        product = service.create_product(
            self.session,
            code=f"P{n}",
            name=name or f"商品 {n}",
            category_id=(category or self.category()).id,
            kind=kind,
            unit=unit,
            currency="CNY",
            skus=skus,
            shelf_life_days=shelf_life_days,
            brand="测试牌",
        )
        self.session.commit()
        return product

    @staticmethod
    def new_sku(
        *,
        base_price: int = 1000,
        barcodes: list[str] | None = None,
        price_per: int | None = None,
        size: str | None = None,
        colour: str | None = None,
    ) -> NewSku:
        return NewSku(
            code=f"SKU{next(_seq)}",
            name="规格",
            base_price=base_price,
            price_per=price_per,
            size=size,
            colour=colour,
            barcodes=[new_ean13()] if barcodes is None else barcodes,
        )

    def sku(self, *, base_price: int = 1000, barcodes: list[str] | None = None) -> Sku:
        product = self.product(skus=[self.new_sku(base_price=base_price, barcodes=barcodes)])
        return product.skus[0]

    def override(
        self,
        sku: Sku,
        price: int,
        *,
        store: Location | None = None,
        channel: Channel | None = None,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
    ) -> PriceOverride:
        override = service.add_price_override(
            self.session,
            sku.id,
            caller=HQ,
            price=price,
            store_id=store.id if store else None,
            channel=channel,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        self.session.commit()
        return override


@pytest.fixture
def catalog(session: Session, factory: Factory) -> CatalogFactory:
    return CatalogFactory(session, factory)
