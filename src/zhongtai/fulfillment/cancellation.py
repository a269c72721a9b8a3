"""Cancelling an order the store may be working on: the rider is called off first, then the
order is cancelled (stock released, payments voided or refunded), then the store's tasks end."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from zhongtai.fulfillment.courier import call_off_rider
from zhongtai.fulfillment.tasks import end_tasks
from zhongtai.integrations.providers import Providers
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import Order
from zhongtai.orders.payments import cancel_order as cancel_and_refund
from zhongtai.orders.rules import CANCELLABLE


def cancel_order(
    session: Session, order_id: uuid.UUID, *, reason: str, providers: Providers
) -> Order:
    """Cancel as :func:`payments.cancel_order` does, first calling off a booked rider. A rider
    who already has the parcel makes it a 409 that changes nothing (nothing refunded, no stock
    released): the goods are on their way, so it is a return.

    The rider is called off before anything is refunded: a platform refusing the call-off must
    leave no money sent back for goods that are leaving."""
    order = get_order(session, order_id, for_update=True)
    if order.status in CANCELLABLE[order.fulfillment_type]:
        call_off_rider(session, order, providers)
    cancelled = cancel_and_refund(session, order_id, reason=reason, providers=providers.payments)
    end_tasks(session, order_id)
    return cancelled
