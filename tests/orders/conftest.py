"""Order builders: a small chain with pickup, delivery and ship switched on, stock, keys and
staff, and helpers that walk an order through checkout, payment and the store's work."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from tests.members.conftest import cipher, make_member  # noqa: F401 (fixtures for offers)
from zhongtai.catalog.models import Category, Product, SaleUnit, Sku
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.integrations.providers import Providers
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability, Location, PilotScope
from zhongtai.stores.service_pilot import upsert_pilot_rule

PEOPLES_SQUARE = {"latitude": 31.2304, "longitude": 121.4737}
#: About 1.1 km north of the store: inside a 3 km delivery radius.
NEARBY = {"latitude": 31.2404, "longitude": 121.4737, "text": "黄浦区某小区 1 号楼"}
#: About 22 km away: outside every radius.
FAR_AWAY = {"latitude": 31.0304, "longitude": 121.4737}


class Chain:
    """One store (all capabilities on) with stock of a few SKUs, and the people who use it."""

    def __init__(self, session: Session, factory: Factory, stock: StockFactory) -> None:
        self.session = session
        self.factory = factory
        self.stock = stock
        self.store = self.open_store()
        self.skus: list[Sku] = [stock.sku() for _ in range(3)]
        for sku in self.skus:
            stock.receive(self.store, sku, 10)
        for feature in ("pickup", "delivery", "ship_from_store"):
            upsert_pilot_rule(
                session, feature=feature, scope=PilotScope.CHAIN, scope_value="*", enabled=True
            )
        session.commit()
        self.app = factory.api_key_headers(Channel.APP)
        self.clerk = factory.staff_headers(Role.STORE_STAFF, [self.store])
        self.hq = factory.staff_headers(Role.HQ_ADMIN)

    def open_store(self, **kw: Any) -> Location:
        store = self.factory.location(**{**PEOPLES_SQUARE, **kw})
        stores.set_capability(self.session, store.id, Capability.PICKUP)
        stores.set_capability(self.session, store.id, Capability.DELIVERY, delivery_radius_m=3000)
        stores.set_capability(self.session, store.id, Capability.SHIP_FROM_STORE)
        self.session.commit()
        return store

    def similar_sku(
        self,
        sku: Sku,
        *,
        on_hand: int = 10,
        unit: SaleUnit = SaleUnit.PIECE,
        price: int = 1000,
    ) -> Sku:
        """Another SKU of the same category as ``sku`` (what a picker may substitute), priced
        ``price`` fen (per 500 g when weighed), with ``on_hand`` units in the store."""
        product = self.session.get(Product, sku.product_id)
        assert product is not None
        category = self.session.get(Category, product.category_id)
        per = 500 if unit is SaleUnit.GRAM else None
        made = self.stock.catalog.product(
            category=category,
            unit=unit,
            skus=[self.stock.catalog.new_sku(base_price=price, price_per=per)],
        )
        similar = made.skus[0]
        if on_hand:
            self.stock.receive(self.store, similar, on_hand)
        return similar

    def basket(self, *quantities: int) -> list[dict[str, Any]]:
        return [
            {"sku_id": str(sku.id), "quantity": q}
            for sku, q in zip(self.skus, quantities, strict=False)
            if q
        ]


@pytest.fixture
def chain(session: Session, factory: Factory, stock: StockFactory) -> Chain:
    return Chain(session, factory, stock)


@pytest.fixture
def stock(session: Session, factory: Factory) -> StockFactory:
    return StockFactory(session, factory)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def quote(
    client: TestClient, headers: Mapping[str, str], body: dict[str, Any], status: int = 201
) -> Any:
    return ok(client.post("/api/v1/checkout/quotes", json=body, headers=headers), status)


def place(client: TestClient, headers: Mapping[str, str], quote_id: str, **extra: Any) -> Any:
    return ok(
        client.post("/api/v1/orders", json={"quote_id": quote_id, **extra}, headers=headers), 201
    )


def forward_payment_notifications(
    client: TestClient, providers: Providers, provider_ref: str
) -> list[int]:
    """Deliver the sandbox's signed notifications of a payment, as its HTTP callbacks would."""
    gateway: Any = providers.payments["sandbox"]
    statuses = []
    for signed in gateway.signed_notifications(provider_ref):
        response = client.post(
            "/api/v1/payments/notifications/sandbox", content=signed.body, headers=signed.headers
        )
        statuses.append(response.status_code)
    return statuses


def pay_by_wallet(
    client: TestClient, providers: Providers, headers: Mapping[str, str], order_id: str
) -> Any:
    """The customer pays with WeChat Pay and confirms in the wallet; the notification lands."""
    payment = ok(
        client.post(
            f"/api/v1/orders/{order_id}/payments", json={"tender": "wechat_pay"}, headers=headers
        ),
        201,
    )
    assert payment["status"] == "pending"
    providers.payments["sandbox"].customer_confirms(payment["provider_ref"])  # type: ignore[attr-defined]
    assert set(forward_payment_notifications(client, providers, payment["provider_ref"])) == {204}
    return payment


def store_step(
    client: TestClient, headers: Mapping[str, str], order_id: str, step: str, body: Any = None
) -> Any:
    return ok(
        client.post(f"/api/v1/fulfillment/orders/{order_id}/{step}", json=body, headers=headers)
    )


def collect_at_counter(client: TestClient, chain: Chain, order: Any) -> Any:
    """The customer shows the pickup code her app has; the chain's clerk hands the order over."""
    code = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))["pickup"]
    return ok(
        client.post(
            "/api/v1/fulfillment/pickups",
            json={"order": order["number"], "code": code["code"]},
            headers=chain.clerk,
        )
    )


def deliver_parcel(
    client: TestClient, chain: Chain, order_id: str, pack: Any = None, tracking: str | None = None
) -> Any:
    """A paid parcel order accepted, picked, packed (as ``pack`` says; all of it by default),
    shipped and delivered by the chain's clerk: the completed order."""
    for step in ("accept", "start-picking"):
        store_step(client, chain.clerk, order_id, step)
    store_step(client, chain.clerk, order_id, "pack", {} if pack is None else pack)
    shipment = {"carrier": "SF", "tracking_number": tracking or new_id()}
    store_step(client, chain.clerk, order_id, "ship", shipment)
    done = store_step(client, chain.clerk, order_id, "delivered")
    assert done["status"] == "completed", done
    return done


def new_id() -> str:
    return str(uuid.uuid4())


def paid_pickup(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    *quantities: int,
    substitution: str = "none",
) -> Any:
    """A pickup order at the chain's store of ``quantities`` of its SKUs, paid by wallet."""
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(*quantities),
        },
    )
    order = place(client, chain.app, q["id"], substitution=substitution)
    pay_by_wallet(client, providers, chain.app, order["id"])
    return order
