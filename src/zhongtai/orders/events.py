"""The events of the orders context: an order's life, payments and refunds."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from zhongtai.core.outbox import event_type


class _OrderFacts(BaseModel):
    order_id: uuid.UUID
    number: str
    channel: str
    fulfillment_type: str
    store_id: uuid.UUID
    member_id: uuid.UUID | None
    status: str
    total: int
    currency: str


class OrderLineFacts(BaseModel):
    line_id: uuid.UUID
    sku_id: uuid.UUID | None
    service: str | None
    location_id: uuid.UUID
    quantity: int
    net_amount: int


@event_type("order.created")
class OrderCreated(_OrderFacts):
    """An order was placed (stock held). POS sales are created paid and completed at once."""

    lines: list[OrderLineFacts]
    channel_order_id: str | None
    promised_by: datetime | None
    guide_id: uuid.UUID | None


class _OrderMoved(_OrderFacts):
    previous_status: str | None
    occurred_at: datetime


@event_type("order.paid")
class OrderPaid(_OrderMoved):
    """Every tender of the order is captured: the store may start the work."""

    paid_amount: int


@event_type("order.accepted")
class OrderAccepted(_OrderMoved):
    """The fulfilling store took the order into its queue."""


@event_type("order.picking")
class OrderPicking(_OrderMoved):
    """A picker started on the order."""


@event_type("order.packed")
class OrderPacked(_OrderMoved):
    """The goods are picked (short-picks and substitutions settled) and packed."""


@event_type("fulfillment.ready_for_pickup")
class OrderReadyForPickup(_OrderMoved):
    """The order waits at the store for the customer's pickup code (or try-on visit), until
    `collect_by`: not collected by then, it is cancelled and what was paid refunded."""

    collect_by: datetime


@event_type("order.out_for_delivery")
class OrderOutForDelivery(_OrderMoved):
    """A rider collected the order from the store."""


@event_type("order.shipped")
class OrderShipped(_OrderMoved):
    """The parcel left with the carrier."""


@event_type("order.completed")
class OrderCompleted(_OrderMoved):
    """The customer has the goods (sold at the till, picked up, delivered or received)."""


@event_type("order.cancelled")
class OrderCancelled(_OrderMoved):
    """The order was cancelled (by the customer, the store, or unpaid past its deadline);
    held stock is released and anything paid is refunded."""

    reason: str


@event_type("order.returned")
class OrderReturned(_OrderMoved):
    """Goods of the order came back (``status`` says whether all of them); refunds follow."""

    return_id: uuid.UUID
    returned_at_store_id: uuid.UUID
    refund_total: int


@event_type("payment.captured")
class PaymentCaptured(BaseModel):
    """Money of one tender is taken (cash or card at the till, a wallet payment online)."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    tender: str
    amount: int
    provider: str | None


@event_type("payment.failed")
class PaymentFailed(BaseModel):
    """A tender was declined or abandoned; the order stays unpaid until it expires."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    tender: str
    amount: int
    provider: str | None


@event_type("payment.voided")
class PaymentVoided(BaseModel):
    """A tender not captured yet was released at its provider: the customer paid another way,
    or the order was cancelled. No money was taken."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    tender: str
    amount: int
    provider: str | None


@event_type("payment.refunded")
class PaymentRefunded(BaseModel):
    """Money went back to one tender (cancellation, short pick or return)."""

    refund_id: uuid.UUID
    payment_id: uuid.UUID
    order_id: uuid.UUID
    tender: str
    amount: int
    reason: str
    #: Points a points tender could not give back because the member was erased: the tender
    #: is settled, the points are lost with her account (0 otherwise).
    points_forfeited: int = 0


#: The event each status change records.
MOVED_EVENTS: dict[str, type[_OrderMoved]] = {
    "paid": OrderPaid,
    "accepted": OrderAccepted,
    "picking": OrderPicking,
    "packed": OrderPacked,
    "ready_for_pickup": OrderReadyForPickup,
    "out_for_delivery": OrderOutForDelivery,
    "shipped": OrderShipped,
    "completed": OrderCompleted,
    "cancelled": OrderCancelled,
    "partially_returned": OrderReturned,
    "returned": OrderReturned,
}
