"""Inventory builders: locations and SKUs through their services, stock through ours."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from zhongtai.catalog.models import ProductKind, Sku
from zhongtai.core.outbox import OutboxEvent
from zhongtai.inventory import service
from zhongtai.inventory.models import StockBalance
from zhongtai.stores.models import Location


class StockFactory:
    def __init__(self, session: Session, factory: Factory) -> None:
        self.session = session
        self.factory = factory
        self.catalog = CatalogFactory(session, factory)

    def location(self, **kw: object) -> Location:
        location = self.factory.location(**kw)  # type: ignore[arg-type]
        self.session.commit()
        return location

    def sku(self, *, fresh: bool = False) -> Sku:
        if fresh:
            product = self.catalog.product(kind=ProductKind.FRESH, shelf_life_days=5)
            return product.skus[0]
        return self.catalog.sku()

    def skus(self, n: int) -> list[Sku]:
        return [self.sku() for _ in range(n)]

    def receive(self, location: Location, sku: Sku, quantity: int) -> None:
        service.receive_stock(self.session, location.id, [service.ReceiptLine(sku.id, quantity)])
        self.session.commit()

    def balance(self, location: Location, sku: Sku) -> StockBalance | None:
        return self.session.scalars(
            select(StockBalance).where(
                StockBalance.location_id == location.id, StockBalance.sku_id == sku.id
            ),
            execution_options={"populate_existing": True},
        ).one_or_none()

    def events(self, kind: str, location: Location) -> list[OutboxEvent]:
        return list(
            self.session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.type == kind, OutboxEvent.store_id == location.id)
                .order_by(OutboxEvent.seq)
            )
        )


@pytest.fixture
def stock(session: Session, factory: Factory) -> StockFactory:
    return StockFactory(session, factory)


def line(sku: Sku | uuid.UUID, quantity: int) -> service.Line:
    return service.Line(sku.id if isinstance(sku, Sku) else sku, quantity)
