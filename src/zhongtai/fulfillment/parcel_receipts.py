"""Parcels nobody confirmed delivered: shipped ``parcel_confirm_days`` ago (10 by default) and
confirmed neither by the carrier nor by the store, they are confirmed received by `serve`, as
marketplaces confirm receipt for the buyer. The order completes: the member's points and the
guide's commission take their course, and the return window runs from then. Its timeline names
:data:`ACTOR` as who confirmed it: when such a parcel arrived is not known, and the on-time
rate leaves it out.

The orders are locked, skipping any a step holds (a clerk confirming it at this very moment),
and each is moved only from ``shipped``: clocks in several processes complete an order once.
Completing touches the order's row alone (its stock shipped with the parcel), so a batch of
orders shares a transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.jobs import PeriodicJob
from zhongtai.fulfillment.tasks import confirm_delivery
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.lifecycle import entered_at
from zhongtai.orders.models import Order
from zhongtai.orders.settings import order_settings

#: Orders confirmed per transaction; the job calls again while a call comes back full.
BATCH = 200
#: Who confirms on the orders' timelines: when such a parcel arrived is not known.
ACTOR = "system:parcel-receipts"


def parcel_receipts(every_seconds: float) -> PeriodicJob:
    """The housekeeping job: parcels confirmed received, ``BATCH`` per transaction."""
    return PeriodicJob(
        ACTOR.removeprefix("system:"), every_seconds, confirm_unconfirmed_parcels, chunk=BATCH
    )


def confirm_unconfirmed_parcels(
    session: Session, *, now: datetime | None = None, batch: int = BATCH
) -> int:
    """Complete parcels shipped more than ``parcel_confirm_days`` before ``now`` and still
    not confirmed delivered, at most ``batch``; how many were completed."""
    now = now or utcnow()
    days = order_settings().parcel_confirm_days
    shipped_at = entered_at(OrderStatus.SHIPPED)
    due = session.scalars(
        select(Order.id)
        .where(
            Order.status == OrderStatus.SHIPPED,
            Order.fulfillment_type == FulfillmentType.SHIP,
            shipped_at < now - timedelta(days=days),
        )
        .order_by(Order.id)
        .limit(batch)
        .with_for_update(of=Order, skip_locked=True)
    ).all()
    note = f"received: confirmed by the platform {days} days after shipping"
    acting = context.actor.set(ACTOR)
    try:
        for order_id in due:
            confirm_delivery(session, order_id, note=note)
    finally:
        context.actor.reset(acting)
    return len(due)
