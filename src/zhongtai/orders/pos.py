"""Till sales: record a POS sale (online or uploaded later by an offline terminal) exactly once,
number its receipt without gaps, take the stock at once, and answer each sale's status."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhongtai.catalog.lookup import sku_price
from zhongtai.core import context
from zhongtai.core.auth.principal import TERMINAL_ID_RULE, Principal
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.errors import DomainError, InvalidInput
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import record_event
from zhongtai.inventory.checks import remembering_checks
from zhongtai.inventory.rules import Line
from zhongtai.inventory.stock import lock_stock_rows
from zhongtai.inventory.stock import record_pos_sale as take_sold_stock
from zhongtai.orders.codes import (
    business_date,
    is_terminal_code,
    receipt_number,
)
from zhongtai.orders.events import OrderCompleted, OrderPaid, PaymentCaptured
from zhongtai.orders.kinds import OrderStatus, TenderType
from zhongtai.orders.lifecycle import order_facts
from zhongtai.orders.loaded_inserts import insert_as_loaded
from zhongtai.orders.models import (
    Order,
    OrderStatusChange,
    Payment,
    PaymentStatus,
    ReceiptCounter,
)
from zhongtai.orders.placing import record_order_created
from zhongtai.orders.pricing_rules import BasketLine, price_basket
from zhongtai.orders.selling_guides import check_selling_guide
from zhongtai.orders.tender_rules import Tender, check_tenders, kept_payments
from zhongtai.orders.till_lookups import TillLookups, recorded_sale, stores_of
from zhongtai.orders.till_orders import till_order
from zhongtai.orders.till_resends import resent_change
from zhongtai.stores.models import Location, LocationKind

MAX_LINES = 200
#: How far in the future a terminal's clock may be before its sale time is refused.
CLOCK_SKEW = timedelta(minutes=10)
#: How old an offline sale may be when it is finally uploaded.
MAX_OFFLINE_AGE = timedelta(days=30)
#: Tenders the till does not take: points are spent from the member's account, which a till
#: sale does not debit, and a points tender is refunded as points -- taken here, they would
#: be goods for nothing and points minted on the return.
NOT_AT_THE_TILL = frozenset({TenderType.POINTS})


@dataclass(frozen=True)
class PosLine:
    sku_id: uuid.UUID
    quantity: int
    #: The price the till charged (fen per the SKU's price unit). An offline till sells at its
    #: cached prices, and the receipt the customer holds is the truth; without it the server's
    #: price for the store at the time of sale applies.
    unit_price: int | None = None


@dataclass(frozen=True)
class PosSale:
    client_sale_id: uuid.UUID
    store_id: uuid.UUID
    terminal_code: str
    lines: Sequence[PosLine]
    tenders: Sequence[Tender]
    occurred_at: datetime | None = None
    member_id: uuid.UUID | None = None
    guide_id: uuid.UUID | None = None


class SaleStatus(StrEnum):
    RECORDED = "recorded"  # new: the terminal may delete it
    DUPLICATE = "duplicate"  # recorded before: the terminal may delete it
    REJECTED = "rejected"  # bad data: keep it, fix it, and send it again


@dataclass(frozen=True)
class SaleResult:
    client_sale_id: uuid.UUID
    status: SaleStatus
    order: Order | None = None
    change: int = 0
    problem: dict[str, Any] | None = field(default=None)


def next_receipt_sequence(session: Session, terminal_id: uuid.UUID, day: date) -> int:
    """The terminal's next receipt number of the day, taken in the sale's own transaction: a
    sale that rolls back gives its number back, so numbers have no gaps."""
    insert_fn = conflict_insert(session)
    stmt = insert_fn(ReceiptCounter).values(
        terminal_id=terminal_id, business_date=day, last_number=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["terminal_id", "business_date"],
        set_={"last_number": ReceiptCounter.last_number + 1},
    )
    return int(session.execute(stmt.returning(ReceiptCounter.last_number)).scalar_one())


def _check_sale(
    sale: PosSale, store: Location | None, now: datetime, lookups: TillLookups
) -> datetime:
    """The sale's time, once its store, terminal, member, guide, lines and tenders are sound."""
    if store is None or store.kind is not LocationKind.STORE:
        raise InvalidInput.field("store_id", f"no store {sale.store_id}")
    if not is_terminal_code(sale.terminal_code):
        # It is printed in the receipt number, whose parts "-" separates.
        raise InvalidInput.field("terminal_code", TERMINAL_ID_RULE)
    if sale.member_id is not None and not lookups.member_exists(sale.member_id):
        raise InvalidInput.field("member_id", f"no member {sale.member_id}")
    if sale.guide_id is not None:
        # Commission pays whoever the till names: only a guide of the store selling may be.
        check_selling_guide(sale.guide_id, lookups.guide(sale.guide_id), store_id=store.id)
    _check_lines(sale.lines)
    for i, tender in enumerate(sale.tenders):
        if tender.type in NOT_AT_THE_TILL:
            raise InvalidInput.field(
                f"tenders.{i}.type", f"{tender.type.value} are not taken at the till"
            )
    return _sale_time(sale, now)


def _check_lines(lines: Sequence[PosLine]) -> None:
    if not lines:
        raise InvalidInput.field("lines", "a sale has at least one line")
    if len(lines) > MAX_LINES:
        raise InvalidInput.field("lines", f"at most {MAX_LINES} lines")
    for i, line in enumerate(lines):
        if line.quantity <= 0:
            raise InvalidInput.field(f"lines[{i}].quantity", "must be 1 or more")
        if line.unit_price is not None and line.unit_price < 0:
            raise InvalidInput.field(f"lines[{i}].unit_price", "must be 0 fen or more")


def _sale_time(sale: PosSale, now: datetime) -> datetime:
    occurred = sale.occurred_at or now
    if occurred.tzinfo is None:
        raise InvalidInput.field("occurred_at", "include a UTC offset")
    if occurred > now + CLOCK_SKEW:
        raise InvalidInput.field("occurred_at", "is in the future; check the terminal's clock")
    if occurred < now - MAX_OFFLINE_AGE:
        raise InvalidInput.field(
            "occurred_at", f"is older than {MAX_OFFLINE_AGE.days} days; post it as an adjustment"
        )
    return occurred


def _priced_lines(
    session: Session, sale: PosSale, caller: Principal, at: datetime, lookups: TillLookups
) -> list[BasketLine]:
    lines = []
    for i, line in enumerate(sale.lines):
        if line.unit_price is not None:
            price, per = line.unit_price, lookups.price_per(line.sku_id, i)
        else:
            priced = sku_price(
                session,
                line.sku_id,
                caller=caller,
                store_id=sale.store_id,
                channel=Channel.POS,
                at=at,
            )
            price, per = priced.price.amount, priced.sku.price_per
        lines.append(BasketLine(line.sku_id, price, per, line.quantity))
    return lines


def record_till_sale(
    session: Session,
    sale: PosSale,
    *,
    caller: Principal,
    now: datetime | None = None,
    lookups: TillLookups | None = None,
) -> SaleResult:
    """Record one till sale exactly once (by the terminal's ``client_sale_id``).

    The order is created paid and completed; on-hand drops at once and is never refused (the
    goods are in the customer's hand): going below zero is flagged for the store. A sale of a
    business day already closed keeps its own day. Bad data raises (nothing is written).
    """
    now = now or utcnow()
    lookups = lookups or TillLookups(session)
    # Before anything is read: a caller of another store learns nothing of a sale by its id.
    caller.ensure_store(sale.store_id)
    earlier = lookups.recorded(sale.client_sale_id)
    if earlier is not None:
        return _duplicate(sale, earlier, lookups)
    store = lookups.store(sale.store_id)
    occurred = _check_sale(sale, store, now, lookups)
    assert store is not None
    basket = price_basket(
        _priced_lines(session, sale, caller, occurred, lookups), delivery_fee_rule=None
    )
    check = check_tenders(basket.total, sale.tenders)
    if not check.ok:
        raise InvalidInput(
            "The tenders do not pay the sale: "
            + "; ".join(f"{p.field} {p.message}" for p in check.problems),
            errors=[{"field": p.field, "message": p.message} for p in check.problems],
        )
    day = business_date(occurred, store.timezone)
    terminal = lookups.terminal(store.id, sale.terminal_code)
    try:
        # The receipt number is taken in the savepoint that writes the order: a sale that
        # loses the race below gives its number back, so numbers have no gaps.
        with session.begin_nested():
            sequence = next_receipt_sequence(session, terminal.id, day)
            order = till_order(
                client_sale_id=sale.client_sale_id,
                store_id=store.id,
                member_id=sale.member_id,
                guide_id=sale.guide_id,
                basket=basket,
                occurred=occurred,
                day=day,
                terminal_id=terminal.id,
                receipt_number=receipt_number(store.code, terminal.code, day, sequence),
            )
            insert_as_loaded(session, [order], order.lines)
    except IntegrityError:
        # Another upload of the same sale won the race; theirs stands.
        raced = recorded_sale(session, sale.client_sale_id)
        if raced is None:
            raise
        return _duplicate(sale, raced, lookups)
    assert order.receipt_number is not None
    _take_payments(session, order, sale.tenders, check.change, occurred)
    take_sold_stock(
        session,
        store.id,
        [Line(x.sku_id, x.quantity) for x in order.lines if x.sku_id is not None],
        reference=order.receipt_number,
    )
    _record_history(session, order, occurred)
    return SaleResult(sale.client_sale_id, SaleStatus.RECORDED, order, change=check.change)


def _duplicate(sale: PosSale, order: Order, lookups: TillLookups) -> SaleResult:
    """The first answer again, change included: a till whose answer was lost prints its
    receipt from this one (another sale under the same id is a 409, see ``till_resends``)."""
    change = resent_change(sale, order, lookups.payments(order))
    return SaleResult(sale.client_sale_id, SaleStatus.DUPLICATE, order, change=change)


def _take_payments(
    session: Session, order: Order, tenders: Sequence[Tender], change: int, at: datetime
) -> None:
    """Each tender as a captured payment; cash is kept net of the change handed back."""
    for tender_type, amount, handed in kept_payments(tenders, change):
        payment = Payment(
            id=new_id(),
            order_id=order.id,
            tender=tender_type,
            amount=amount,
            tendered=handed,
            status=PaymentStatus.CAPTURED,
            captured_at=at,
        )
        session.add(payment)
        record_event(
            session,
            PaymentCaptured(
                payment_id=payment.id,
                order_id=order.id,
                tender=tender_type.value,
                amount=amount,
                provider=None,
            ),
            aggregate_type="order",
            aggregate_id=order.id,
            store_id=order.store_id,
        )


def _record_history(session: Session, order: Order, at: datetime) -> None:
    """A till sale passes created → paid → completed in one moment; the timeline and the events
    say so, as for any order."""
    steps = [(None, OrderStatus.CREATED), (OrderStatus.CREATED, OrderStatus.PAID)]
    steps.append((OrderStatus.PAID, OrderStatus.COMPLETED))
    for before, after in steps:
        session.add(
            OrderStatusChange(
                order_id=order.id,
                from_status=before.value if before else None,
                to_status=after.value,
                occurred_at=at,
                actor=context.actor.get(),
            )
        )
    record_order_created(session, order)
    facts = order_facts(order)
    for payload in (
        OrderPaid(**facts, previous_status="created", occurred_at=at, paid_amount=order.total),
        OrderCompleted(**facts, previous_status="paid", occurred_at=at),
    ):
        record_event(
            session,
            payload,
            aggregate_type="order",
            aggregate_id=order.id,
            store_id=order.store_id,
        )


def upload_till_sales(
    session: Session, sales: Sequence[PosSale], *, caller: Principal, now: datetime | None = None
) -> list[SaleResult]:
    """An offline terminal's queue, uploaded in one batch: each sale recorded once, in its own
    savepoint, so one bad sale is answered ``rejected`` (with its problem) and the rest stand."""
    now = now or utcnow()
    stores = stores_of(session, sales)
    _lock_stock_rows(session, sales, stores, caller)
    lookups = TillLookups.for_sales(
        session,
        sales,
        (x.sku_id for sale in sales for x in sale.lines if x.unit_price is not None),
        stores=stores,
    )
    results = []
    with remembering_checks(session):
        for sale in sales:
            try:
                with session.begin_nested():
                    result = record_till_sale(
                        session, sale, caller=caller, now=now, lookups=lookups
                    )
                if result.order is not None and result.status is SaleStatus.RECORDED:
                    lookups.remember_recorded(result.order)
                results.append(result)
            except DomainError as problem:
                lookups.forget_terminals()
                results.append(
                    SaleResult(
                        sale.client_sale_id,
                        SaleStatus.REJECTED,
                        problem=problem.to_problem(),
                    )
                )
    return results


def _lock_stock_rows(
    session: Session,
    sales: Sequence[PosSale],
    stores: dict[uuid.UUID, Location | None],
    caller: Principal,
) -> None:
    """Lock every stock row the batch touches first, in SKU order: two tills of a store
    uploading at once then queue instead of deadlocking sale by sale. Only at stores that exist
    and the caller sells at: locking makes missing rows, and a sale refused for its store must
    write nothing anywhere (nor fail the batch on a foreign key)."""
    by_store: dict[uuid.UUID, set[uuid.UUID]] = {}
    for sale in sales:
        by_store.setdefault(sale.store_id, set()).update(x.sku_id for x in sale.lines)
    for store_id in sorted(by_store):
        store = stores.get(store_id)
        if store is not None and store.kind is LocationKind.STORE and caller.covers_store(store_id):
            lock_stock_rows(session, store_id, by_store[store_id])
