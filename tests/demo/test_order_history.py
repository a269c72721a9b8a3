"""The demo chain's 90 days of orders: shaped like a real chain's trade, and every order as
consistent as one the platform took itself — totals, payments, refunds, receipts, timelines."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.demo.conftest import SEED_DAY, loaded_demo_database, small_chain
from zhongtai.core.clock import as_utc
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.demo import existing_demo_data
from zhongtai.demo.members import build_demo_members
from zhongtai.demo.orders_history import build_order_history, history_window
from zhongtai.demo.store_trade import store_trades
from zhongtai.inventory.models import StockMovement
from zhongtai.orders.codes import parse_receipt_number
from zhongtai.orders.kinds import FulfillmentType, OrderStatus, SalesChannel
from zhongtai.orders.models import (
    Order,
    OrderLine,
    OrderReturnLine,
    OrderStatusChange,
    Payment,
    PaymentStatus,
    ReceiptCounter,
    Refund,
)
from zhongtai.orders.rules import TRANSITIONS

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    directory: Path = tmp_path_factory.mktemp("history")
    with loaded_demo_database(directory, small_chain(), history_days=90, today=SEED_DAY) as url:
        database = Database.connect(url)
        try:
            yield database
        finally:
            database.dispose()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.reader() as s:
        yield s


def _orders(session: Session) -> list[Order]:
    return list(session.scalars(select(Order)))


def test_every_order_totals_its_line_nets_plus_the_fee_and_is_paid_exactly_once(
    session: Session,
) -> None:
    lines: dict[object, list[OrderLine]] = defaultdict(list)
    for line in session.scalars(select(OrderLine)):
        lines[line.order_id].append(line)
    paid: Counter[object] = Counter()
    for payment in session.scalars(select(Payment)):
        assert payment.status is PaymentStatus.CAPTURED
        paid[payment.order_id] += payment.amount
    orders = _orders(session)
    assert len(orders) > 3000
    for order in orders:
        mine = lines[order.id]
        assert mine, order.number
        assert order.subtotal == sum(x.amount for x in mine)
        assert order.discount_total == sum(x.discount for x in mine)
        assert order.total == sum(x.net_amount for x in mine) + order.delivery_fee
        assert order.paid_amount == paid[order.id]
        if order.status in (OrderStatus.COMPLETED, OrderStatus.RETURNED) and (
            order.fulfillment_type is not FulfillmentType.RESERVE_TRY
        ):
            assert order.paid_amount == order.total, order.number
        if order.fulfillment_type is FulfillmentType.RESERVE_TRY:
            assert order.paid_amount == 0  # a try-on is paid at the till, if at all


def test_refunds_never_exceed_what_was_paid_per_order_and_per_tender(session: Session) -> None:
    by_payment: Counter[object] = Counter()
    by_order: Counter[object] = Counter()
    for refund in session.scalars(select(Refund)):
        by_payment[refund.payment_id] += refund.amount
        by_order[refund.order_id] += refund.amount
    assert by_order, "some orders were refunded"
    for payment in session.scalars(select(Payment)):
        assert payment.refunded_amount == by_payment[payment.id] <= payment.amount
    for order in _orders(session):
        assert order.refunded_amount == by_order[order.id] <= order.paid_amount
    returned = Counter[object]()
    for line in session.scalars(select(OrderReturnLine)):
        returned[line.order_line_id] += line.quantity
    for line in session.scalars(select(OrderLine).where(OrderLine.returned_quantity > 0)):
        assert line.returned_quantity == returned[line.id] <= line.quantity


def test_each_timeline_follows_the_state_machine_to_the_status_the_order_shows(
    session: Session,
) -> None:
    steps: dict[object, list[OrderStatusChange]] = defaultdict(list)
    for change in session.scalars(
        select(OrderStatusChange).order_by(OrderStatusChange.occurred_at, OrderStatusChange.id)
    ):
        steps[change.order_id].append(change)
    _, end = history_window(SEED_DAY, 90, "Asia/Shanghai")
    for order in _orders(session):
        timeline = steps[order.id]
        assert timeline[0].from_status is None and timeline[0].to_status == "created"
        table = TRANSITIONS[order.fulfillment_type]
        for before, after in pairwise(timeline):
            assert after.from_status == before.to_status, order.number
            allowed = table[OrderStatus(before.to_status)]
            assert OrderStatus(after.to_status) in allowed, (order.number, before, after)
        assert timeline[-1].to_status == order.status.value
        assert as_utc(timeline[-1].occurred_at) < end  # nothing happens after the seed day began
        if order.status is OrderStatus.COMPLETED:
            assert order.completed_at is not None


def test_till_receipts_count_from_one_without_gaps_per_terminal_and_day(session: Session) -> None:
    sequences: dict[tuple[object, object], list[int]] = defaultdict(list)
    for order in session.scalars(select(Order).where(Order.channel == SalesChannel.POS)):
        assert order.receipt_number is not None and order.terminal_id is not None
        receipt = parse_receipt_number(order.receipt_number)
        assert receipt.business_date == order.business_date
        sequences[(order.terminal_id, order.business_date)].append(receipt.sequence)
    counters = {
        (c.terminal_id, c.business_date): c.last_number
        for c in session.scalars(select(ReceiptCounter))
    }
    assert sequences and set(counters) == set(sequences)
    for key, numbers in sequences.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), key
        assert counters[key] == len(numbers)  # the till's next sale takes the next number


def test_history_moves_no_stock_and_writes_no_events(session: Session) -> None:
    kinds = set(session.scalars(select(StockMovement.reference_type).distinct()))
    assert kinds == {"demo_opening_stock"}
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_trade_has_a_weekly_rhythm_lunch_and_evening_peaks_and_a_third_online(
    session: Session,
) -> None:
    orders = _orders(session)
    local = [as_utc(o.placed_at).astimezone(SHANGHAI) for o in orders]
    per_day = Counter(t.date() for t in local)
    weekend = [n for d, n in per_day.items() if d.weekday() >= 5]
    midweek = [n for d, n in per_day.items() if d.weekday() < 4]
    assert sum(weekend) / len(weekend) > 1.2 * sum(midweek) / len(midweek)
    per_hour = Counter(t.hour for t in local)
    assert per_hour[12] > 1.8 * per_hour[15] and per_hour[18] > 1.8 * per_hour[15]
    online = sum(1 for o in orders if o.channel is not SalesChannel.POS)
    assert 0.22 < online / len(orders) < 0.38
    assert {o.channel for o in orders} == set(SalesChannel)
    assert {o.fulfillment_type for o in orders} == set(FulfillmentType)
    with_member = sum(1 for o in orders if o.member_id is not None)
    assert 0.3 < with_member / len(orders) < 0.7


def test_some_orders_were_cancelled_and_some_goods_came_back(session: Session) -> None:
    statuses = Counter(o.status for o in _orders(session))
    total = sum(statuses.values())
    assert 0 < statuses[OrderStatus.CANCELLED] < 0.1 * total
    returned = statuses[OrderStatus.PARTIALLY_RETURNED] + statuses[OrderStatus.RETURNED]
    assert 0 < returned < 0.05 * total
    assert statuses[OrderStatus.COMPLETED] > 0.85 * total


def test_a_chain_with_history_is_recognised_by_its_members_too(session: Session) -> None:
    other_seed_same_members = small_chain()
    other_seed_same_members.locations = []  # only the members' identities can tell
    other_seed_same_members.staff = []
    found = existing_demo_data(session, other_seed_same_members)
    assert found is not None and found.startswith("demo member 'zt-demo-42-")


def test_the_same_chain_and_seed_day_give_the_same_history_down_to_ids() -> None:
    chain = small_chain()
    _, end = history_window(SEED_DAY, 14, "Asia/Shanghai")
    members = build_demo_members(chain, until=end, total=chain.member_count)
    ranges = {s["id"]: [sku["id"] for sku in chain.catalog.skus] for s in chain.stores}
    trades = store_trades(chain, ranges, members.by_store, {})

    def orders() -> list[dict[str, Any]]:
        return build_order_history(
            chain, trades, today=SEED_DAY, days=14, shoppers=members.shoppers
        ).orders

    first = orders()
    assert first and first == orders()
    by_id = sorted(first, key=lambda o: o["id"])
    placed = [o["placed_at"] for o in by_id]
    assert placed == sorted(placed)  # ids are UUIDv7 of the moment: they sort like live ones
