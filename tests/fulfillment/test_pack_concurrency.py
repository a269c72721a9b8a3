"""On PostgreSQL, packing an order with a short pick and a substitute takes its row locks in the
order every checkout takes them, so the two never deadlock."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text

from tests.factories import APP_CALLER, Factory
from tests.races import MANY_CONNECTIONS, race_database, stock_of
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.db import Database
from zhongtai.fulfillment import tasks
from zhongtai.fulfillment.picking import Substitute
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.inventory import service as inventory
from zhongtai.orders import checkout, payments, placing
from zhongtai.orders.kinds import (
    FulfillmentType,
    OrderStatus,
    SalesChannel,
    SubstitutionPreference,
    TenderType,
)
from zhongtai.orders.models import Order
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability, PilotScope
from zhongtai.stores.service_pilot import upsert_pilot_rule

pytestmark = MANY_CONNECTIONS
LOCK_ROW = text(
    "SELECT on_hand FROM stock_balances WHERE location_id = :location AND sku_id = :sku FOR UPDATE"
)


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_pack_race", pool_size=4) as database:
        yield database


@pytest.fixture
def gateway() -> Iterator[SandboxPaymentGateway]:
    gateway = SandboxPaymentGateway("race-gateway", notify=False)
    yield gateway
    gateway.close()


def _picking_order(
    db: Database, gateway: SandboxPaymentGateway
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A paid pickup order of 2 units of one SKU, being picked: (store, order, the ordered SKU,
    a similar SKU that comes before it in lock order)."""
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        stores.set_capability(s, store.id, Capability.PICKUP)
        upsert_pilot_rule(
            s, feature="pickup", scope=PilotScope.CHAIN, scope_value="*", enabled=True
        )
        category = catalog.create_category(s, code="PACKRACE", name="race", parent_id=None)
        product = catalog.create_product(
            s,
            code="PACKRACE",
            name="牛奶",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[
                catalog.NewSku(code="PACKRACE-A", name="A", base_price=1000),
                catalog.NewSku(code="PACKRACE-B", name="B", base_price=1000),
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
                fulfillment_type=FulfillmentType.PICKUP,
                lines=[inventory.Line(ordered, 2)],
                store_id=store.id,
            ),
            caller=APP_CALLER,
        )
        order = placing.place_order(
            s,
            placing.PlaceOrder(quote_id=quote.id, substitution=SubstitutionPreference.SIMILAR),
            caller=APP_CALLER,
        ).order
        payments.start_payment(
            s,
            order.id,
            tender=TenderType.BANK_CARD,
            provider=gateway,
            notify_url="http://127.0.0.1:9/notify",
        )
        tasks.accept_order(s, order.id)
        tasks.start_picking(s, order.id)
        return store.id, order.id, ordered, similar


def test_packing_a_short_pick_with_a_substitute_never_deadlocks_with_a_checkout(
    db: Database, gateway: SandboxPaymentGateway
) -> None:
    store_id, order_id, ordered, similar = _picking_order(db, gateway)
    with db.reader() as s:
        line_id = s.scalars(select(Order).where(Order.id == order_id)).one().lines[0].id

    def pack() -> OrderStatus:
        with db.writer() as s, s.begin():
            packed = tasks.pack_order(
                s,
                order_id,
                picks=[tasks.LinePick(line_id, picked=1, substitute=Substitute(similar, 1, 1000))],
                providers={"sandbox": gateway},
            )
            return packed.status

    # A checkout of both SKUs locks their rows in lock order: the similar SKU's row first.
    with db.engine.connect() as checkout_conn, ThreadPoolExecutor(1) as packer:
        checkout_conn.execute(LOCK_ROW, {"location": store_id, "sku": similar})
        checkout_pid = checkout_conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        packing = packer.submit(pack)
        _wait_until_another_backend_waits_for_a_lock(db, checkout_pid)
        # The pack waits for the similar SKU's row. Had it taken the ordered SKU's row first
        # (freeing the short-picked unit), this would wait for it: a deadlock.
        checkout_conn.execute(text("SET LOCAL lock_timeout = '10s'"))
        checkout_conn.execute(LOCK_ROW, {"location": store_id, "sku": ordered})
        checkout_conn.commit()
        assert packing.result(timeout=30) is OrderStatus.PACKED
    assert stock_of(db, store_id, ordered) == (10, 1)  # one unit picked, still held
    assert stock_of(db, store_id, similar) == (9, 0)  # the substitute left the shelf


def _wait_until_another_backend_waits_for_a_lock(db: Database, own_pid: int) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> :own"
    )
    deadline = time.monotonic() + 10
    with db.reader() as probe:  # autocommit: each look is a fresh snapshot of the activity
        while probe.execute(waiting, {"own": own_pid}).scalar_one() == 0:
            if time.monotonic() > deadline:
                raise AssertionError("the pack never waited for the checkout's row lock")
            time.sleep(0.02)
