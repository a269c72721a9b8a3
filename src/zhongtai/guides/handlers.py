"""How the guides context reacts to orders: a till sale naming a guide binds the customer to
her; a completed order is attributed and its commission booked; a return takes commission
back. Run by the relay exactly once per event."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from zhongtai.guides.attribution import attribute_completed_order
from zhongtai.guides.binding import touch_member
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.reversals import reverse_for_return
from zhongtai.integrations.handlers import PublishedEvent, on_event
from zhongtai.members.identity import get_member
from zhongtai.members.models import MemberStatus
from zhongtai.orders.kinds import SalesChannel
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.models import OrderReturn


@on_event("order.completed", consumer="guides.attribution")
def attribute_completed(event: PublishedEvent, session: Session) -> None:
    order = get_order(session, uuid.UUID(event.payload["order_id"]))
    member = get_member(session, order.member_id) if order.member_id else None
    if (
        order.channel is SalesChannel.POS
        and order.guide_id is not None
        and member is not None
        and member.status is MemberStatus.ACTIVE
    ):
        # The clerk entered her guide id at the till: that is a touch (binding source 1).
        touch_member(
            session,
            member.id,
            order.guide_id,
            BindingSource.IN_STORE_SALE,
            at=order.placed_at,
            source_ref=str(order.id),
        )
    attribute_completed_order(session, order, at=order.completed_at or event.occurred_at)


@on_event("order.returned", consumer="guides.commission_reversal")
def reverse_returned(event: PublishedEvent, session: Session) -> None:
    order_return = session.get(OrderReturn, uuid.UUID(event.payload["return_id"]))
    if order_return is None:
        raise LookupError(f"return {event.payload['return_id']} of the event is not stored")
    reverse_for_return(session, order_return, at=order_return.occurred_at)
