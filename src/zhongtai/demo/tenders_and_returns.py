"""The money side of the demo history's orders: each paid order's payment (cash handed over in
notes, wallets through the sandbox provider), its refunds, and the goods that now and then come
back within ten days, mostly to the same store, as the payment and return services record them."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from zhongtai.demo.catalog import Row
from zhongtai.demo.order_rows import ACTOR, OrderDraft
from zhongtai.demo.seeded import uuid7_at
from zhongtai.orders.kinds import OrderStatus, TenderType
from zhongtai.orders.models import ItemCondition, PaymentStatus, RefundReason
from zhongtai.orders.rules import return_refund


def minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


class TendersAndReturns:
    """One store's payments, refunds and returns, drawn from its history stream (``rng``);
    returns come in before the history's ``end``, some of them to another of the ``stores``."""

    def __init__(
        self,
        rng: random.Random,
        store: Row,
        stores: Sequence[Row],
        end: datetime,
        weighed: set[uuid.UUID],
    ) -> None:
        self.rng = rng
        self.store = store
        self.stores = stores
        self.end = end
        #: Weighed SKUs: their lines come back whole.
        self.weighed = weighed

    def pay(self, order: OrderDraft, tender: TenderType, at: datetime, *, online: bool) -> None:
        total = order.row["total"]
        tendered = None
        if tender is TenderType.CASH:
            note = self.rng.choice((1000, 5000, 10000))  # a ¥10, ¥50 or ¥100 note
            tendered = max(total, math.ceil(total / note) * note)
        order.payment = {
            "id": uuid7_at(self.rng, at),
            "order_id": order.row["id"],
            "tender": tender,
            "amount": total,
            "tendered": tendered,
            "status": PaymentStatus.CAPTURED,
            "provider": "sandbox" if online else None,
            "provider_ref": f"sbx_pay_{self.rng.getrandbits(128):032x}" if online else None,
            "provider_sequence": 1 if online else 0,
            "refunded_amount": 0,
            "captured_at": at,
            "created_at": at,
            "updated_at": at,
        }
        order.row["paid_amount"] = total

    def refund(
        self,
        order: OrderDraft,
        amount: int,
        reason: RefundReason,
        at: datetime,
        return_id: uuid.UUID | None = None,
    ) -> None:
        payment = order.payment
        assert payment is not None, "only a paid order is refunded"
        order.refunds.append(
            {
                "id": uuid7_at(self.rng, at),
                "order_id": order.row["id"],
                "payment_id": payment["id"],
                "tender": payment["tender"],
                "amount": amount,
                "reason": reason,
                "return_id": return_id,
                "occurred_at": at,
            }
        )
        payment["refunded_amount"] += amount
        payment["updated_at"] = at
        order.row["refunded_amount"] += amount

    def maybe_return(self, order: OrderDraft, chance: float) -> None:
        """Now and then goods come back within ten days, mostly to the same store."""
        completed_at = order.steps[-1][1]
        at = completed_at + minutes(self.rng, 60, 10 * 24 * 60)
        if order.payment is None or at >= self.end or self.rng.random() >= chance:
            return
        line = self.rng.choice(order.lines)
        whole = line["sku_id"] in self.weighed or line["quantity"] == 1
        quantity = line["quantity"] if whole else self.rng.randint(1, line["quantity"])
        refund = return_refund(line["net_amount"], line["quantity"], 0, quantity)
        if refund <= 0:
            return
        same_store = self.rng.random() < 0.8 or len(self.stores) == 1
        where = self.store if same_store else self.rng.choice(self.stores)
        return_id = uuid7_at(self.rng, at)
        reason = self.rng.choice(("质量问题", "尺码不合适", "买重了", "不想要了"))
        order.returns.append(
            {
                "id": return_id,
                "order_id": order.row["id"],
                "reference": f"RET-{order.row['number']}-1",
                "store_id": where["id"],
                "refund_total": refund,
                "reason": reason,
                "occurred_at": at,
                "actor": ACTOR,
            }
        )
        condition = ItemCondition.RESELLABLE if self.rng.random() < 0.8 else ItemCondition.DAMAGED
        order.return_lines.append(
            {
                "return_id": return_id,
                "order_line_id": line["id"],
                "quantity": quantity,
                "condition": condition,
                "refund": refund,
            }
        )
        line["returned_quantity"] = quantity
        line["returned_refund"] = refund
        self.refund(order, refund, RefundReason.RETURN, at, return_id)
        everything = len(order.lines) == 1 and quantity == line["quantity"]
        status = OrderStatus.RETURNED if everything else OrderStatus.PARTIALLY_RETURNED
        order.steps.append((status, at, f"return at {where['code']}"))
