"""Placing the order of a checkout quote: claim the quote, write the order and its lines."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Executable,
    Select,
    Table,
    Uuid,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.db import UTCDateTime
from zhongtai.core.errors import Conflict, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import write_event
from zhongtai.members.errors import MemberErased
from zhongtai.members.models import Member, MemberStatus
from zhongtai.orders.errors import QuoteExpired
from zhongtai.orders.events import OrderCreated, OrderLineFacts
from zhongtai.orders.kinds import (
    FulfillmentType,
    LineKind,
    OrderStatus,
    SalesChannel,
    SubstitutionPreference,
)
from zhongtai.orders.lifecycle import note_status, order_facts
from zhongtai.orders.loaded_inserts import insert_as_loaded
from zhongtai.orders.models import Order, OrderLine, Quote
from zhongtai.orders.numbers import next_order_number
from zhongtai.orders.selling_guides import check_selling_guide, guide_roster_entries
from zhongtai.orders.uncollected_orders import keep_at_counter


@dataclass(frozen=True)
class PlaceOrder:
    quote_id: uuid.UUID
    channel_order_id: str | None = None
    contact_name: str | None = None
    contact_phone_masked: str | None = None
    contact_phone_sealed: bytes | None = None
    note: str | None = None
    substitution: SubstitutionPreference = SubstitutionPreference.NONE
    guide_id: uuid.UUID | None = None
    address_text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Placed:
    order: Order
    created: bool


def same_channel(caller: Principal, channel: SalesChannel) -> bool:
    """A channel key places only its own channel's quotes (a guide's share link sells through
    the app or the mini-program); staff may place any."""
    if caller.channel is None:
        return True
    if channel is SalesChannel.GUIDE_SHARE:
        return caller.channel in (Channel.APP, Channel.MINI_PROGRAM)
    return caller.channel.value == channel.value


_MEMBERS: Table = Member.__table__  # type: ignore[assignment]


def _person(member_id: Any, *within: Table, not_erased: bool = False) -> Select[Any]:
    """The id and status of the person a quote's ``member_id`` stands for (herself, or her
    survivor when it names a member merged into another), her row key-share-locked; with
    ``not_erased``, only when she was not erased. ``within``: the tables of the statement this
    one is a subquery of, which ``member_id`` refers to.

    An erasure holds her row locked until it commits: a placing meeting one in flight waits
    for it and then finds her erased; an erasure arriving after waits for the placing and then
    finds her order under way (and refuses). Her row is locked before the quote's, the order
    an erasure locks them in (it blanks her quotes), so the two never deadlock.
    """
    person, pointer = _MEMBERS.alias("person"), _MEMBERS.alias("pointer")
    merged_into = (
        select(pointer.c.merged_into_id)
        .where(pointer.c.id == member_id)
        .correlate(*within)
        .scalar_subquery()
    )
    found = select(person.c.id, person.c.status).where(
        person.c.id == func.coalesce(merged_into, member_id)
    )
    if not_erased:
        found = found.where(person.c.status != MemberStatus.ERASED)
    return found.correlate(*within).with_for_update(read=True, key_share=True)


@lru_cache(maxsize=1)
def _claim_statement() -> Executable:
    """Mark an unplaced, unexpired quote of the caller's channels, made for nobody or for a
    member who was not erased, as the new order's, and read it back, in one statement (built
    once).

    A concurrent placing of the same quote waits for this row and then finds it claimed.
    """
    quotes: Table = Quote.__table__  # type: ignore[assignment]
    now = bindparam("now", type_=UTCDateTime())
    claim = (
        update(quotes)
        .where(
            quotes.c.id == bindparam("quote_id", type_=Uuid()),
            quotes.c.order_id.is_(None),
            quotes.c.expires_at > now,
            quotes.c.channel.in_(bindparam("channels", expanding=True)),
            # Made for nobody, or for someone not erased (one index lookup or two).
            or_(
                quotes.c.member_id.is_(None),
                exists(_person(quotes.c.member_id, quotes, not_erased=True)),
            ),
        )
        .values(order_id=bindparam("order_id", type_=Uuid()), updated_at=now)
        .returning(*quotes.c)
    )
    return select(Quote).from_statement(claim)


def _claim(
    session: Session, quote_id: uuid.UUID, order_id: uuid.UUID, caller: Principal, now: datetime
) -> Quote | None:
    channels = [c for c in SalesChannel if same_channel(caller, c)]
    params = {"quote_id": quote_id, "order_id": order_id, "now": now, "channels": channels}
    claimed: Quote | None = session.scalars(
        _claim_statement(), params, execution_options={"populate_existing": True}
    ).one_or_none()
    return claimed


def _existing_order(session: Session, channel: SalesChannel, channel_order_id: str) -> Order | None:
    return session.scalars(
        select(Order).where(Order.channel == channel, Order.channel_order_id == channel_order_id)
    ).one_or_none()


def _order(session: Session, order_id: uuid.UUID) -> Order:
    order = session.get(Order, order_id)
    if order is None:  # a quote points at its order by a unique column; losing it is a bug
        raise RuntimeError(f"order {order_id} of a quote is missing")
    return order


def _placed_before(quote: Quote, order: Order, place: PlaceOrder) -> Order:
    """The order the quote became, when this placing is that order again. Under another of the
    channel's order ids it is another order: answering this one would tell the channel that
    order was placed (409)."""
    if place.channel_order_id not in (None, order.channel_order_id):
        raise Conflict(
            f"Quote {quote.id} was placed as order {order.number}"
            f" (channel order {order.channel_order_id or 'not given'}), not as"
            f" {place.channel_order_id}. Ask for a new quote.",
            quote_id=str(quote.id),
            order_id=str(order.id),
        )
    return order


def _earlier_answer(
    session: Session, place: PlaceOrder, caller: Principal, now: datetime
) -> Placed | None:
    """Why the quote cannot become a new order, judged on the locked quote: 404, 409 for
    another channel's quote, an expired one or one of a member erased since, or the order
    placed before (by this quote or by the channel's order id). None: nothing stands in the
    way."""
    # Her row before the quote's, as the claim and an erasure lock them.
    member_id = select(Quote.member_id).where(Quote.id == place.quote_id).scalar_subquery()
    person = session.execute(_person(member_id)).first()
    quote = session.scalars(
        select(Quote).where(Quote.id == place.quote_id).with_for_update()
    ).one_or_none()
    if quote is None:
        raise NotFound(f"No quote {place.quote_id}.", quote_id=str(place.quote_id))
    if not same_channel(caller, quote.channel):
        raise Conflict(
            f"Quote {quote.id} was made for the {quote.channel.value} channel.",
            quote_id=str(quote.id),
        )
    if quote.order_id is not None:
        order = _order(session, quote.order_id)
        return Placed(_placed_before(quote, order, place), created=False)
    if place.channel_order_id is not None:
        earlier = _existing_order(session, quote.channel, place.channel_order_id)
        if earlier is not None:
            return Placed(earlier, created=False)
    if quote.expires_at <= now:
        raise QuoteExpired(
            f"Quote {quote.id} expired at {quote.expires_at.isoformat()}; its stock is no longer "
            "held. Ask for a new quote.",
            quote_id=str(quote.id),
        )
    if person is not None and person.status is MemberStatus.ERASED:
        raise MemberErased(person.id)
    return None


def place_order(
    session: Session, place: PlaceOrder, *, caller: Principal, now: datetime | None = None
) -> Placed:
    """Turn a quote into an order: its lines, prices, promise and stock holds.

    Idempotent twice over: a quote places one order (placing it again answers that order), and
    so does the channel's own order id. An expired quote answers 409 ``quote-expired``.

    Usually one statement claims the quote and reads it back. When that claim fails, or a
    channel order id must be looked up first, the quote is read under lock to decide: 404,
    409, the order placed before, or (nothing in the way) the claim after all.
    """
    now = now or utcnow()
    if place.channel_order_id is None:
        return _place(session, place, caller, now)
    # Two placings of one channel order (a marketplace resending it, quoted afresh) may both
    # find no order under its id and both write one; the second meets the first's on the
    # unique index. In a savepoint that one is undone, its quote unclaimed, and the first's
    # order answered, as a later resend would be.
    try:
        with session.begin_nested():
            return _place(session, place, caller, now)
    except IntegrityError:
        # The claim read the quote back with this placing's order: what the session holds is
        # of the undone savepoint.
        session.expire_all()
        answer = _earlier_answer(session, place, caller, now)
        if answer is None or answer.created:
            raise
        return answer


def _place(session: Session, place: PlaceOrder, caller: Principal, now: datetime) -> Placed:
    order_id = new_id()
    quote = None
    if place.channel_order_id is None:
        quote = _claim(session, place.quote_id, order_id, caller, now)
    if quote is None:
        answer = _earlier_answer(session, place, caller, now)
        if answer is not None:
            return answer
        quote = _claim(session, place.quote_id, order_id, caller, now)
        if quote is None:  # locked and judged placeable just now
            raise RuntimeError(f"quote {place.quote_id} could not be claimed")
    if place.guide_id is not None:
        # Only for a new order: a retry answers the order placed, whatever became of her since.
        entries = guide_roster_entries(session, [place.guide_id])
        check_selling_guide(place.guide_id, entries.get(place.guide_id))
    order = _new_order(quote, place, order_id, now)
    insert_as_loaded(session, [order], order.lines)
    if order.fulfillment_type is FulfillmentType.RESERVE_TRY:
        # Nothing is paid for a try-on: its goods are held from the booking on.
        keep_at_counter(session, order, order.promised_ready_at or now)
    note_status(session, order, None, note=f"placed from quote {quote.id}")
    record_order_created(session, order)
    return Placed(order, created=True)


def _new_order(quote: Quote, place: PlaceOrder, order_id: uuid.UUID, now: datetime) -> Order:
    """The order of a quote, every column set (it is written whole, see ``insert_as_loaded``)."""
    address = dict(quote.address or {})
    if place.address_text:
        address["text"] = place.address_text
    needs_payment = quote.fulfillment_type is not FulfillmentType.RESERVE_TRY
    written = utcnow()
    order = Order(
        id=order_id,
        created_at=written,
        updated_at=written,
        number=next_order_number(now),
        channel=quote.channel,
        channel_order_id=place.channel_order_id,
        fulfillment_type=quote.fulfillment_type,
        status=OrderStatus.CREATED,
        store_id=quote.store_id,
        member_id=quote.member_id,
        guide_id=place.guide_id,
        quote_id=quote.id,
        substitution=place.substitution,
        currency=quote.currency,
        subtotal=quote.subtotal,
        discount_total=quote.discount_total,
        delivery_fee=quote.delivery_fee,
        total=quote.total,
        paid_amount=0,
        refunded_amount=0,
        contact_name=place.contact_name,
        contact_phone_masked=place.contact_phone_masked,
        contact_phone_sealed=place.contact_phone_sealed,
        address=address or None,
        note=place.note,
        reservation_ids=list(quote.reservation_ids),
        offers=quote.offers,
        placed_at=now,
        payment_due_at=quote.expires_at if needs_payment else None,
        promised_ready_at=quote.promised_ready_at,
        promised_by=quote.promised_by,
        completed_at=None,
        pickup_code_digest=None,
        pickup_code_sealed=None,
        receipt_number=None,
        terminal_id=None,
        client_sale_id=None,
        business_date=None,
        actor=context.actor.get(),
    )
    order.lines = [
        OrderLine(
            id=new_id(),
            order_id=order_id,
            line_no=i + 1,
            kind=LineKind(row["kind"]),
            sku_id=uuid.UUID(row["sku_id"]) if row["sku_id"] else None,
            service=row["service"],
            location_id=uuid.UUID(row["location_id"]),
            quantity=row["quantity"],
            unit_price=row["unit_price"],
            price_per=row["price_per"],
            amount=row["amount"],
            discount=row["discount"],
            net_amount=row["net_amount"],
            picked_quantity=None,
            substitute_sku_id=None,
            substitute_quantity=None,
            short_refund=0,
            returned_quantity=0,
            returned_refund=0,
            substitute_returned_quantity=0,
            substitute_returned_refund=0,
        )
        for i, row in enumerate(quote.lines)
    ]
    return order


def record_order_created(session: Session, order: Order) -> None:
    write_event(
        session,
        OrderCreated(
            **order_facts(order),
            lines=[
                OrderLineFacts(
                    line_id=x.id,
                    sku_id=x.sku_id,
                    service=x.service,
                    location_id=x.location_id,
                    quantity=x.quantity,
                    net_amount=x.net_amount,
                )
                for x in order.lines
            ],
            channel_order_id=order.channel_order_id,
            promised_by=order.promised_by,
            guide_id=order.guide_id,
        ),
        aggregate_type="order",
        aggregate_id=order.id,
        store_id=order.store_id,
    )
