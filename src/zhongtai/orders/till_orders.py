"""The order a till sale becomes: paid and completed at once, every column set, so that it is
written whole by one INSERT per table (:func:`loaded_inserts.insert_as_loaded`) rather than
through the unit of work."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.orders.kinds import (
    FulfillmentType,
    LineKind,
    OrderStatus,
    SalesChannel,
    SubstitutionPreference,
)
from zhongtai.orders.models import Order, OrderLine
from zhongtai.orders.numbers import next_order_number
from zhongtai.orders.pricing_rules import PricedBasket


def till_order(
    *,
    client_sale_id: uuid.UUID,
    store_id: uuid.UUID,
    member_id: uuid.UUID | None,
    guide_id: uuid.UUID | None,
    basket: PricedBasket,
    occurred: datetime,
    day: date,
    terminal_id: uuid.UUID,
    receipt_number: str,
) -> Order:
    """The completed, paid in-store order of a till sale, with its lines."""
    order_id = new_id()
    written = utcnow()
    order = Order(
        id=order_id,
        created_at=written,
        updated_at=written,
        number=next_order_number(occurred),
        channel=SalesChannel.POS,
        channel_order_id=None,
        fulfillment_type=FulfillmentType.IN_STORE,
        status=OrderStatus.COMPLETED,
        store_id=store_id,
        member_id=member_id,
        guide_id=guide_id,
        quote_id=None,
        substitution=SubstitutionPreference.NONE,
        currency="CNY",
        subtotal=basket.subtotal,
        discount_total=basket.discount_total,
        delivery_fee=0,
        total=basket.total,
        paid_amount=basket.total,
        refunded_amount=0,
        contact_name=None,
        contact_phone_masked=None,
        contact_phone_sealed=None,
        address=None,
        note=None,
        reservation_ids=[],
        offers=None,
        placed_at=occurred,
        payment_due_at=None,
        promised_ready_at=None,
        promised_by=None,
        completed_at=occurred,
        pickup_code_digest=None,
        pickup_code_sealed=None,
        receipt_number=receipt_number,
        terminal_id=terminal_id,
        client_sale_id=client_sale_id,
        business_date=day,
        actor=context.actor.get(),
    )
    order.lines = [
        OrderLine(
            id=new_id(),
            order_id=order_id,
            line_no=i + 1,
            kind=LineKind.GOODS,
            sku_id=line.sku_id,
            service=None,
            location_id=store_id,
            quantity=line.quantity,
            unit_price=line.unit_price,
            price_per=line.price_per,
            amount=line.amount,
            discount=line.discount,
            net_amount=line.net,
            picked_quantity=line.quantity,
            substitute_sku_id=None,
            substitute_quantity=None,
            short_refund=0,
            returned_quantity=0,
            returned_refund=0,
            substitute_returned_quantity=0,
            substitute_returned_refund=0,
        )
        for i, line in enumerate(basket.lines)
    ]
    return order
