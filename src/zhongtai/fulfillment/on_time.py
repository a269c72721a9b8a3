"""The on-time rate: of the orders whose promise fell due in a period, how many the chain kept.
A delivery or a parcel is kept when it reached the customer (completed) by ``promised_by``; a
pickup or a try-on when it was ready to collect by then (for these ``promised_by`` is the ready
time). Per store and fulfilment type, for store managers and HQ.

Read from the orders themselves (when each completed, when it became ready), not from the
promise clock's records, so that a period while `serve` was not running counts as it happened.
A cancelled order is promised nothing any more, an unpaid one nothing yet (a try-on booking,
never paid up front, is promised from the booking): both are left out, and so is a parcel
nobody confirmed delivered until `serve` confirmed it days later (when it arrived is unknown).
A promise not yet due counts once it is kept (a delivery completed ahead of it), and otherwise
once it falls due.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.fulfillment.parcel_receipts import ACTOR as PARCEL_RECEIPTS
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.lifecycle import entered_at
from zhongtai.orders.models import Order, OrderStatusChange

#: The types a checkout promises a moment for.
PROMISED = (
    FulfillmentType.DELIVERY,
    FulfillmentType.SHIP,
    FulfillmentType.PICKUP,
    FulfillmentType.RESERVE_TRY,
)
#: Kept when ready to collect by the promise (the others: when at her door).
_COLLECTED = (FulfillmentType.PICKUP, FulfillmentType.RESERVE_TRY)
#: Not cancelled (``created``: only a try-on booking, which is never paid up front).
_COUNTED = tuple(s for s in OrderStatus if s is not OrderStatus.CANCELLED)


@dataclass(frozen=True)
class OnTime:
    """Promises of one store and fulfilment type that fell due in the period, and those kept."""

    store_id: uuid.UUID | None  # None: the stores together
    fulfillment_type: FulfillmentType | None  # None: every type together
    promised: int
    kept: int

    @property
    def late(self) -> int:
        return self.promised - self.kept

    @property
    def rate(self) -> float | None:
        """The share kept, 0 to 1; None when nothing fell due."""
        return self.kept / self.promised if self.promised else None


def on_time(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    store_ids: Collection[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> list[OnTime]:
    """Each store's and type's promises due in [``since``, ``until``) and decided at ``now``
    (kept, or due and not kept), with how many were kept; by store, then type."""
    now = now or utcnow()
    kept_at = case(
        (Order.fulfillment_type.in_(_COLLECTED), entered_at(OrderStatus.READY_FOR_PICKUP)),
        else_=Order.completed_at,
    )
    kept_in_time = kept_at <= Order.promised_by
    kept = func.coalesce(func.sum(case((kept_in_time, 1), else_=0)), 0)
    stmt = (
        select(Order.store_id, Order.fulfillment_type, func.count(), kept)
        .where(
            Order.status.in_(_COUNTED),  # the leading column of the orders' promise index
            or_(
                Order.status != OrderStatus.CREATED,
                Order.fulfillment_type == FulfillmentType.RESERVE_TRY,
            ),
            Order.fulfillment_type.in_(PROMISED),
            ~exists().where(
                OrderStatusChange.order_id == Order.id,
                OrderStatusChange.to_status == OrderStatus.COMPLETED.value,
                OrderStatusChange.actor == PARCEL_RECEIPTS,
            ),
            Order.promised_by >= since,
            Order.promised_by < until,
            or_(Order.promised_by < now, kept_in_time),
        )
        .group_by(Order.store_id, Order.fulfillment_type)
        .order_by(Order.store_id, Order.fulfillment_type)
    )
    if store_ids is not None:
        stmt = stmt.where(Order.store_id.in_(store_ids))
    return [
        OnTime(store, kind, promised, kept) for store, kind, promised, kept in session.execute(stmt)
    ]


def together(rows: Iterable[OnTime]) -> OnTime:
    """The rows summed: the stores' and types' promises as one."""
    rows = list(rows)
    return OnTime(None, None, sum(r.promised for r in rows), sum(r.kept for r in rows))
