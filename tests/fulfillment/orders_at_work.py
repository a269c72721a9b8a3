"""Orders a store is working on, made through the services on a race database: for the
lock-order tests of packing and of rider callbacks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.factories import APP_CALLER, Factory
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.db import Database
from zhongtai.fulfillment import tasks
from zhongtai.fulfillment.location_facts import Address
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.inventory import service as inventory
from zhongtai.orders import checkout, payments, placing
from zhongtai.orders.kinds import (
    FulfillmentType,
    SalesChannel,
    SubstitutionPreference,
    TenderType,
)
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability, PilotScope
from zhongtai.stores.service_pilot import upsert_pilot_rule

STORE = {"latitude": 31.2304, "longitude": 121.4737}
#: About 1.1 km north of the store, inside its 3 km delivery radius.
NEARBY = Address(latitude=31.2404, longitude=121.4737)
_CAPABILITIES = {
    FulfillmentType.PICKUP: Capability.PICKUP,
    FulfillmentType.DELIVERY: Capability.DELIVERY,
    FulfillmentType.SHIP: Capability.SHIP_FROM_STORE,
}
_FEATURES = {kind: capability.value for kind, capability in _CAPABILITIES.items()}


@dataclass(frozen=True)
class OrderBeingPicked:
    """A paid order of 2 units of one SKU, being picked."""

    store_id: uuid.UUID
    order_id: uuid.UUID
    ordered: uuid.UUID
    #: A similar SKU that comes before the ordered one in lock order, 10 on hand.
    similar: uuid.UUID


def order_being_picked(
    db: Database,
    gateway: SandboxPaymentGateway,
    kind: FulfillmentType,
    code: str,
    *,
    member_id: uuid.UUID | None = None,
    points: int = 0,
) -> OrderBeingPicked:
    """The order of ``member_id`` if given, ``points`` of hers paying part of it, and a bank
    card the rest."""
    with db.writer() as s, s.begin():
        store = Factory(s).location(**STORE)
        radius = {"delivery_radius_m": 3000} if kind is FulfillmentType.DELIVERY else {}
        stores.set_capability(s, store.id, _CAPABILITIES[kind], **radius)
        upsert_pilot_rule(
            s, feature=_FEATURES[kind], scope=PilotScope.CHAIN, scope_value="*", enabled=True
        )
        category = catalog.create_category(s, code=code, name="race", parent_id=None)
        product = catalog.create_product(
            s,
            code=code,
            name="牛奶",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[
                catalog.NewSku(code=f"{code}-A", name="A", base_price=1000),
                catalog.NewSku(code=f"{code}-B", name="B", base_price=1000),
            ],
        )
        similar, ordered = sorted(x.id for x in product.skus)
        inventory.receive_stock(
            s, store.id, [inventory.ReceiptLine(ordered, 10), inventory.ReceiptLine(similar, 10)]
        )
        quote = checkout.quote_checkout(
            s,
            checkout.QuoteRequest(
                channel=SalesChannel.APP,
                fulfillment_type=kind,
                lines=[inventory.Line(ordered, 2)],
                store_id=store.id if kind is FulfillmentType.PICKUP else None,
                address=None if kind is FulfillmentType.PICKUP else NEARBY,
                member_id=member_id,
            ),
            caller=APP_CALLER,
        )
        order = placing.place_order(
            s,
            placing.PlaceOrder(quote_id=quote.id, substitution=SubstitutionPreference.SIMILAR),
            caller=APP_CALLER,
        ).order
        if points:
            payments.pay_with_points(s, order.id, points)
        payments.start_payment(
            s,
            order.id,
            tender=TenderType.BANK_CARD,
            provider=gateway,
            notify_url="http://127.0.0.1:9/notify",
        )
        tasks.accept_order(s, order.id)
        tasks.start_picking(s, order.id)
        return OrderBeingPicked(store.id, order.id, ordered, similar)
