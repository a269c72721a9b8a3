"""On PostgreSQL, many clients racing for the same orders: the last units go to exactly as many
checkouts as there are units, a payment is applied once however many notifications race, a
pickup is handed over once, and an offline batch uploaded by racing retries records each sale
once with gapless receipts. Each client works in its own transaction, as a request would."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from sqlalchemy import func, select, update

from tests.factories import APP_CALLER, Factory, clerk_of
from tests.races import MANY_CONNECTIONS, all_at_once, race_database, stock_of
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict
from zhongtai.core.jobs import run_job_once
from zhongtai.core.outbox import OutboxEvent
from zhongtai.core.settings import Settings
from zhongtai.fulfillment import pickup, tasks
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.inventory import service as inventory
from zhongtai.inventory.models import StockMovement
from zhongtai.orders import checkout, payment_notifications, payments, placing, pos, unpaid_orders
from zhongtai.orders.kinds import FulfillmentType, OrderStatus, SalesChannel, TenderType
from zhongtai.orders.models import Order
from zhongtai.orders.tender_rules import Tender
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability, PilotScope
from zhongtai.stores.service_pilot import upsert_pilot_rule

pytestmark = MANY_CONNECTIONS
CLIENTS = 32
SETTINGS = Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef")  # type: ignore[arg-type]
_seq = iter(range(1, 1_000_000))
Won = TypeVar("Won")


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_order_race", pool_size=CLIENTS + 2) as database:
        yield database


def _race(clients: int, work: Callable[[int], Won]) -> list[Won | str]:
    """Every client's outcome: what ``work`` returned, or the slug of the conflict it met."""

    def outcome(i: int) -> Won | str:
        try:
            return work(i)
        except Conflict as conflict:
            return conflict.slug

    return all_at_once(clients, outcome)


def _store(db: Database, on_hand: int) -> tuple[uuid.UUID, uuid.UUID]:
    n = next(_seq)
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        stores.set_capability(s, store.id, Capability.PICKUP)
        upsert_pilot_rule(
            s, feature="pickup", scope=PilotScope.CHAIN, scope_value="*", enabled=True
        )
        category = catalog.create_category(s, code=f"ORACE{n}", name="race", parent_id=None)
        product = catalog.create_product(
            s,
            code=f"ORACE{n}",
            name="热卖",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[catalog.NewSku(code=f"ORACE{n}-0", name="0", base_price=1000)],
        )
        sku_id = product.skus[0].id
        inventory.receive_stock(s, store.id, [inventory.ReceiptLine(sku_id, on_hand)])
        return store.id, sku_id


def _quote(db: Database, store_id: uuid.UUID, sku_id: uuid.UUID) -> uuid.UUID:
    """A committed quote holding one unit of ``sku_id`` for pickup at ``store_id``."""
    with db.writer() as s, s.begin():
        return checkout.quote_checkout(
            s,
            checkout.QuoteRequest(
                channel=SalesChannel.APP,
                fulfillment_type=FulfillmentType.PICKUP,
                lines=[inventory.Line(sku_id, 1)],
                store_id=store_id,
            ),
            caller=APP_CALLER,
        ).id


def _checkout(db: Database, store_id: uuid.UUID, sku_id: uuid.UUID) -> uuid.UUID:
    with db.writer() as s, s.begin():
        quote = checkout.quote_checkout(
            s,
            checkout.QuoteRequest(
                channel=SalesChannel.APP,
                fulfillment_type=FulfillmentType.PICKUP,
                lines=[inventory.Line(sku_id, 1)],
                store_id=store_id,
            ),
            caller=APP_CALLER,
        )
        placed = placing.place_order(s, placing.PlaceOrder(quote_id=quote.id), caller=APP_CALLER)
        return placed.order.id


def test_32_checkouts_racing_for_the_last_10_units_place_exactly_10_orders(db: Database) -> None:
    store_id, sku_id = _store(db, on_hand=10)
    outcomes = _race(CLIENTS, lambda _: _checkout(db, store_id, sku_id))
    placed = [o for o in outcomes if isinstance(o, uuid.UUID)]
    refused = Counter(o for o in outcomes if not isinstance(o, uuid.UUID))
    assert len(placed) == 10
    assert set(refused) <= {"insufficient-stock", "no-store-can-fulfil"}
    assert stock_of(db, store_id, sku_id) == (10, 10)
    with db.reader() as s:
        assert inventory.verify_stock(s) == []


def test_racing_placings_of_one_quote_make_one_order_and_each_answers_it(db: Database) -> None:
    store_id, sku_id = _store(db, on_hand=5)
    quote_id = _quote(db, store_id, sku_id)

    def place(_: int) -> tuple[uuid.UUID, bool]:
        with db.writer() as s, s.begin():
            placed = placing.place_order(
                s, placing.PlaceOrder(quote_id=quote_id), caller=APP_CALLER
            )
            return placed.order.id, placed.created

    answers = [o for o in _race(CLIENTS, place) if not isinstance(o, str)]
    assert len(answers) == CLIENTS, "no placing is refused"
    assert Counter(created for _, created in answers) == {True: 1, False: CLIENTS - 1}
    assert len({order_id for order_id, _ in answers}) == 1
    with db.reader() as s:
        assert s.scalar(select(func.count()).where(Order.quote_id == quote_id)) == 1


def test_racing_placings_of_one_channel_order_from_several_quotes_make_one_order(
    db: Database,
) -> None:
    """A marketplace resending its order at once, each resend quoted afresh: one order, and
    every resend answers it."""
    store_id, sku_id = _store(db, on_hand=CLIENTS)
    quotes = [_quote(db, store_id, sku_id) for _ in range(4)]
    channel_order_id = f"MKT-{uuid.uuid4().hex[:12]}"

    def place(i: int) -> tuple[uuid.UUID, bool]:
        with db.writer() as s, s.begin():
            placed = placing.place_order(
                s,
                placing.PlaceOrder(quote_id=quotes[i % 4], channel_order_id=channel_order_id),
                caller=APP_CALLER,
            )
            return placed.order.id, placed.created

    answers = _race(16, place)
    assert all(not isinstance(a, str) for a in answers), answers
    assert len({order_id for order_id, _ in answers}) == 1  # type: ignore[misc]
    assert Counter(created for _, created in answers) == {True: 1, False: 15}  # type: ignore[misc]
    with db.reader() as s:
        assert s.scalar(select(func.count()).where(Order.channel_order_id == channel_order_id)) == 1


def test_racing_duplicate_notifications_pay_the_order_once(db: Database) -> None:
    store_id, sku_id = _store(db, on_hand=5)
    order_id = _checkout(db, store_id, sku_id)
    gateway = SandboxPaymentGateway("race-gateway", notify=False)
    try:
        with db.writer() as s, s.begin():
            started = payments.start_payment(
                s,
                order_id,
                tender=TenderType.WECHAT_PAY,
                provider=gateway,
                notify_url="http://127.0.0.1:9/notify",
            )
            ref = started.payment.provider_ref
        assert ref is not None
        gateway.customer_confirms(ref)
        signed = gateway.signed_notifications(ref)

        def deliver(i: int) -> str:
            note = signed[i % len(signed)]
            with db.writer() as s, s.begin():
                payment_notifications.apply_notification(s, gateway, note.headers, note.body)
            return "ok"

        assert set(_race(16, deliver)) == {"ok"}
    finally:
        gateway.close()
    with db.reader() as s:
        order = s.get(Order, order_id)
        assert order is not None and order.status is OrderStatus.PAID
        assert order.paid_amount == 1000
        paid_events = s.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.type == "order.paid", OutboxEvent.aggregate_id == str(order_id))
        )
        assert paid_events == 1


def test_eight_clerks_racing_to_hand_over_one_pickup_hand_it_over_once(db: Database) -> None:
    store_id, sku_id = _store(db, on_hand=5)
    order_id = _checkout(db, store_id, sku_id)
    gateway = SandboxPaymentGateway("race-gateway", notify=False)
    try:
        with db.writer() as s, s.begin():
            payments.start_payment(
                s,
                order_id,
                tender=TenderType.BANK_CARD,
                provider=gateway,
                notify_url="http://127.0.0.1:9/notify",
            )
            tasks.accept_order(s, order_id)
            tasks.start_picking(s, order_id)
            tasks.pack_order(s, order_id, providers={"sandbox": gateway})
            order = pickup.make_ready_for_pickup(s, order_id, settings=SETTINGS)
            ticket = pickup.pickup_ticket(order, SETTINGS)
        assert ticket is not None
        clerk = clerk_of(store_id)

        def hand_over(_: int) -> str:
            with db.writer() as s, s.begin():
                pickup.hand_over_pickup(
                    s,
                    clerk=clerk,
                    client_ip="127.0.0.1",
                    settings=SETTINGS,
                    qr_payload=ticket.qr_payload,
                )
            return "handed over"

        outcomes = Counter(_race(8, hand_over))
    finally:
        gateway.close()
    assert outcomes == {"handed over": 1, "conflict": 7}
    assert stock_of(db, store_id, sku_id) == (4, 0)
    with db.reader() as s:
        shipments = s.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(StockMovement.location_id == store_id, StockMovement.kind == "shipment")
        )
        assert shipments == 1


def test_one_offline_batch_uploaded_by_eight_racing_retries_records_each_sale_once(
    db: Database,
) -> None:
    store_id, sku_id = _store(db, on_hand=100)
    till = Principal(
        kind="api_key",
        id=uuid.uuid4(),
        name="till",
        permissions=frozenset(Permission),
        store_ids=frozenset({store_id}),
        channel=Channel.POS,
        terminal_id="T9",
    )
    sales = [
        pos.PosSale(
            client_sale_id=uuid.uuid4(),
            store_id=store_id,
            terminal_code="T9",
            lines=[pos.PosLine(sku_id, 1)],
            tenders=[Tender(TenderType.CASH, 1000)],
            occurred_at=datetime.now(UTC),
        )
        for _ in range(20)
    ]

    def upload(_: int) -> str:
        with db.writer() as s, s.begin():
            pos.upload_till_sales(s, sales, caller=till)
        return "ok"

    assert set(_race(8, upload)) == {"ok"}
    with db.reader() as s:
        receipts = s.scalars(select(Order.receipt_number).where(Order.store_id == store_id)).all()
    assert len(receipts) == 20
    assert sorted(int(r.rsplit("-", 1)[1]) for r in receipts if r) == list(range(1, 21))
    assert stock_of(db, store_id, sku_id) == (80, 0)


def test_tills_of_one_store_uploading_batches_in_opposite_orders_at_once_never_deadlock(
    db: Database,
) -> None:
    store_id, first_sku = _store(db, on_hand=100)
    with db.writer() as s, s.begin():
        product = catalog.create_product(
            s,
            code=f"ORACE-B{next(_seq)}",
            name="另一件",
            category_id=catalog.create_category(
                s, code=f"ORB{next(_seq)}", name="b", parent_id=None
            ).id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[catalog.NewSku(code=f"ORB-{next(_seq)}", name="1", base_price=1000)],
        )
        second_sku = product.skus[0].id
        inventory.receive_stock(s, store_id, [inventory.ReceiptLine(second_sku, 100)])

    def till(code: str) -> Principal:
        return Principal(
            kind="api_key",
            id=uuid.uuid4(),
            name=code,
            permissions=frozenset(Permission),
            store_ids=frozenset({store_id}),
            channel=Channel.POS,
            terminal_id=code,
        )

    def batch(code: str, skus: list[uuid.UUID]) -> list[pos.PosSale]:
        return [
            pos.PosSale(
                client_sale_id=uuid.uuid4(),
                store_id=store_id,
                terminal_code=code,
                lines=[pos.PosLine(skus[i % 2], 1)],
                tenders=[Tender(TenderType.CASH, 1000)],
                occurred_at=datetime.now(UTC),
            )
            for i in range(30)
        ]

    uploads = [
        (till(f"T{i}"), batch(f"T{i}", [first_sku, second_sku][:: 1 if i % 2 else -1]))
        for i in range(8)
    ]

    def upload(i: int) -> str:
        principal, sales = uploads[i]
        with db.writer() as s, s.begin():
            results = pos.upload_till_sales(s, sales, caller=principal)
        assert {r.status for r in results} == {pos.SaleStatus.RECORDED}
        return "ok"

    assert _race(8, upload) == ["ok"] * 8
    assert stock_of(db, store_id, first_sku) == (100 - 120, 0)
    assert stock_of(db, store_id, second_sku) == (100 - 120, 0)


def test_sweepers_of_four_workers_cancel_each_overdue_unpaid_order_once(db: Database) -> None:
    store_id, sku_id = _store(db, on_hand=20)
    orders = [_checkout(db, store_id, sku_id) for _ in range(20)]
    with db.writer() as s, s.begin():
        s.execute(
            update(Order)
            .where(Order.id.in_(orders))
            .values(payment_due_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    assert stock_of(db, store_id, sku_id) == (20, 20)
    swept = all_at_once(4, lambda _: run_job_once(db, unpaid_orders.unpaid_order_sweeper(0, {})))
    assert sum(swept) == 20, "each order is counted by the one sweeper that cancelled it"
    with db.reader() as s:
        statuses = s.scalars(select(Order.status).where(Order.id.in_(orders))).all()
        cancelled = s.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.type == "order.cancelled",
                OutboxEvent.aggregate_id.in_([str(x) for x in orders]),
            )
        )
    assert set(statuses) == {OrderStatus.CANCELLED}
    assert cancelled == 20
    assert stock_of(db, store_id, sku_id) == (20, 0)
