"""The demo history's order rows as the checkout and the state machine write them: each order's
number, row and lines while its story is told, then its timeline, payment, refunds and returns
into the history's tables, ready for bulk insert."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from zhongtai.demo.catalog import Row
from zhongtai.demo.seeded import uuid7_at
from zhongtai.orders.kinds import (
    FulfillmentType,
    LineKind,
    OrderStatus,
    SalesChannel,
    SubstitutionPreference,
)
from zhongtai.orders.pricing_rules import PricedBasket

ACTOR = "demo:history"
CURRENCY = "CNY"
#: Order numbers as the platform issues them: Crockford base-32, no I, L, O or U.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass
class OrderHistory:
    """Every row of the history, per table, ready for bulk insert."""

    orders: list[Row] = field(default_factory=list)
    lines: list[Row] = field(default_factory=list)
    changes: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    refunds: list[Row] = field(default_factory=list)
    returns: list[Row] = field(default_factory=list)
    return_lines: list[Row] = field(default_factory=list)
    terminals: list[Row] = field(default_factory=list)
    counters: list[Row] = field(default_factory=list)


@dataclass
class OrderDraft:
    """One order while it is built; added to the history only if its story ends in time."""

    row: Row
    lines: list[Row]
    steps: list[tuple[OrderStatus, datetime, str | None]]
    payment: Row | None = None
    refunds: list[Row] = field(default_factory=list)
    returns: list[Row] = field(default_factory=list)
    return_lines: list[Row] = field(default_factory=list)


class StoreOrderRows:
    """One store's orders, numbered and written from its history stream (``rng``): order
    numbers are unique across the chain (``numbers`` is shared by every store)."""

    def __init__(self, rng: random.Random, store: Row, numbers: set[str]) -> None:
        self.rng = rng
        self.store = store
        self.numbers = numbers

    def number(self, at: datetime) -> str:
        while True:
            number = f"{at:%Y%m%d}-" + "".join(self.rng.choice(_ALPHABET) for _ in range(8))
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def draft(
        self,
        at: datetime,
        channel: SalesChannel,
        ftype: FulfillmentType,
        priced: PricedBasket,
        member_id: uuid.UUID | None,
    ) -> OrderDraft:
        order_id = uuid7_at(self.rng, at)
        row: Row = {
            "id": order_id,
            "number": self.number(at),
            "channel": channel,
            "channel_order_id": None,
            "fulfillment_type": ftype,
            "status": OrderStatus.CREATED,
            "store_id": self.store["id"],
            "member_id": member_id,
            "guide_id": None,
            "quote_id": None,
            "substitution": SubstitutionPreference.NONE,
            "currency": CURRENCY,
            "subtotal": priced.subtotal,
            "discount_total": priced.discount_total,
            "delivery_fee": priced.delivery_fee,
            "total": priced.total,
            "paid_amount": 0,
            "refunded_amount": 0,
            "contact_name": None,
            "contact_phone_masked": None,
            "contact_phone_sealed": None,
            "address": None,
            "note": None,
            "reservation_ids": [],
            "offers": None,
            "placed_at": at,
            "payment_due_at": None,
            "promised_ready_at": None,
            "promised_by": None,
            "completed_at": None,
            "pickup_code_digest": None,
            "pickup_code_sealed": None,
            "receipt_number": None,
            "terminal_id": None,
            "client_sale_id": None,
            "business_date": None,
            "actor": ACTOR,
            "created_at": at,
            "updated_at": at,
        }
        lines = [
            {
                "id": uuid7_at(self.rng, at),
                "order_id": order_id,
                "line_no": i + 1,
                "kind": LineKind.GOODS,
                "sku_id": line.sku_id,
                "service": None,
                "location_id": self.store["id"],
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "price_per": line.price_per,
                "amount": line.amount,
                "discount": line.discount,
                "net_amount": line.net,
                "picked_quantity": None,
                "substitute_sku_id": None,
                "substitute_quantity": None,
                "short_refund": 0,
                "returned_quantity": 0,
                "returned_refund": 0,
            }
            for i, line in enumerate(priced.lines)
        ]
        return OrderDraft(row, lines, [(OrderStatus.CREATED, at, None)])

    def add(self, history: OrderHistory, order: OrderDraft) -> None:
        """Adds an order's rows; its status and last change are those of its last step."""
        row = order.row
        previous: OrderStatus | None = None
        for step, (status, at, note) in enumerate(order.steps):
            history.changes.append(
                {
                    "id": uuid7_at(self.rng, at, step),
                    "order_id": row["id"],
                    "from_status": previous.value if previous else None,
                    "to_status": status.value,
                    "occurred_at": at,
                    "actor": ACTOR,
                    "note": note,
                }
            )
            previous = status
        row["status"] = previous
        row["updated_at"] = order.steps[-1][1]
        history.orders.append(row)
        history.lines += order.lines
        if order.payment is not None:
            history.payments.append(order.payment)
        history.refunds += order.refunds
        history.returns += order.returns
        history.return_lines += order.return_lines


def close_order(order: OrderDraft, status: OrderStatus, at: datetime, note: str | None) -> None:
    order.steps.append((status, at, note))
    order.row["status"] = status
    if status is OrderStatus.COMPLETED:
        order.row["completed_at"] = at
