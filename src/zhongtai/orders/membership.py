"""How orders follow the member: moved to the survivor of a merge, listed in her data export,
summed up per channel in her overview (the member 360), and her contact details forgotten and
the stock her open quotes held let go of when she is erased."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict
from zhongtai.inventory.order_holds import lock_holds_and_stock
from zhongtai.inventory.reservations import get_reservation, in_lock_order, release_reservation
from zhongtai.members.hooks import erase_step, export_section, merge_step, overview_section
from zhongtai.orders.kinds import OrderStatus, SalesChannel
from zhongtai.orders.models import Order, Quote
from zhongtai.stores.models import Location

#: Orders that are purchases: paid at least once (not cancelled, not still awaiting payment).
PURCHASE_STATUSES = frozenset(OrderStatus) - {OrderStatus.CREATED, OrderStatus.CANCELLED}
#: Orders still under way: the contact and address are needed to finish them.
UNDER_WAY = frozenset(OrderStatus) - {
    OrderStatus.COMPLETED,
    OrderStatus.CANCELLED,
    OrderStatus.PARTIALLY_RETURNED,
    OrderStatus.RETURNED,
}
#: The overview's recent window, the same rolling year the tiers and the guide's cards use.
RECENT_WINDOW = timedelta(days=365)
LATEST_ORDERS = 10


@merge_step("orders")
def move_orders_to_survivor(
    session: Session, merged_id: uuid.UUID, survivor_id: uuid.UUID
) -> dict[str, Any]:
    """The merged member's orders (every channel, every status) and checkout quotes become the
    survivor's, so her history, her spend and what a return is checked against are one person's.

    The trace names every order moved (ids taken from the same UPDATE, so an order written
    concurrently is either named and moved or left on the merged id, where reads that follow
    the merge pointer still find it). Quotes are counted only: a placed quote is traced by its
    order, an unplaced one expires within minutes.
    """
    moved = session.scalars(
        update(Order)
        .where(Order.member_id == merged_id)
        .values(member_id=survivor_id)
        .returning(Order.id)
    ).all()
    quotes = session.execute(
        update(Quote).where(Quote.member_id == merged_id).values(member_id=survivor_id)
    ).rowcount  # type: ignore[attr-defined]
    # Ids are time-ordered (UUIDv7): sorted, the trace reads oldest first.
    order_ids = sorted(moved)
    return {"orders": len(order_ids), "order_ids": [str(i) for i in order_ids], "quotes": quotes}


@export_section("orders")
def export_orders(session: Session, member_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Every order placed under any of her ids, oldest first, with its lines (her right of
    access covers what she bought, where, and the contact and address she gave)."""
    rows = session.execute(
        select(Order, Location.name)
        .join(Location, Location.id == Order.store_id)
        .where(Order.member_id.in_(member_ids))
        .order_by(Order.placed_at, Order.id)
    ).all()
    return [
        {
            "id": str(o.id),
            "number": o.number,
            "member_id": str(o.member_id),
            "channel": o.channel.value,
            "fulfillment_type": o.fulfillment_type.value,
            "status": o.status.value,
            "store_id": str(o.store_id),
            "store_name": store_name,
            "placed_at": o.placed_at.isoformat(),
            "completed_at": o.completed_at.isoformat() if o.completed_at else None,
            "currency": o.currency,
            "subtotal": o.subtotal,
            "discount_total": o.discount_total,
            "delivery_fee": o.delivery_fee,
            "total": o.total,
            "paid_amount": o.paid_amount,
            "refunded_amount": o.refunded_amount,
            "contact_name": o.contact_name,
            "contact_phone": o.contact_phone_masked,
            "address": o.address,
            "note": o.note,
            "lines": [
                {
                    "sku_id": str(line.sku_id) if line.sku_id else None,
                    "service": line.service,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "price_per": line.price_per,
                    "net_amount": line.net_amount,
                    "returned_quantity": line.returned_quantity,
                }
                for line in o.lines
            ],
        }
        for o, store_name in rows
    ]


@overview_section("orders")
def orders_overview(session: Session, member_ids: list[uuid.UUID], now: datetime) -> dict[str, Any]:
    """Her purchases per channel (count and net spend, the last 12 months and all time), her
    first and last purchase, and her latest orders of any channel and status. Two statements,
    however long her history: one grouped sum, one limited list."""
    since = now - RECENT_WINDOW
    net = Order.total - Order.refunded_amount
    recent = Order.placed_at >= since
    per_channel = {
        channel: (int(n), int(spend), int(n_recent), int(spend_recent), first, last)
        for channel, n, spend, n_recent, spend_recent, first, last in session.execute(
            select(
                Order.channel,
                func.count(),
                func.coalesce(func.sum(net), 0),
                func.count(case((recent, 1))),
                func.coalesce(func.sum(case((recent, net), else_=0)), 0),
                func.min(Order.placed_at),
                func.max(Order.placed_at),
            )
            .where(Order.member_id.in_(member_ids), Order.status.in_(PURCHASE_STATUSES))
            .group_by(Order.channel)
        )
    }
    latest = session.execute(
        select(
            Order.id,
            Order.number,
            Order.channel,
            Order.fulfillment_type,
            Order.store_id,
            Location.name,
            Order.status,
            Order.currency,
            Order.total,
            Order.placed_at,
        )
        .join(Location, Location.id == Order.store_id)
        .where(Order.member_id.in_(member_ids))
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(LATEST_ORDERS)
    ).all()
    none = (0, 0, 0, 0, None, None)
    firsts = [v[4] for v in per_channel.values()]
    lasts = [v[5] for v in per_channel.values()]
    return {
        "channels": [
            {
                "channel": channel.value,
                "orders_12m": per_channel.get(channel, none)[2],
                "net_spend_12m": per_channel.get(channel, none)[3],
                "orders_all_time": per_channel.get(channel, none)[0],
                "net_spend_all_time": per_channel.get(channel, none)[1],
            }
            for channel in SalesChannel
        ],
        "orders_12m": sum(v[2] for v in per_channel.values()),
        "net_spend_12m": sum(v[3] for v in per_channel.values()),
        "orders_all_time": sum(v[0] for v in per_channel.values()),
        "net_spend_all_time": sum(v[1] for v in per_channel.values()),
        "first_order_at": min(firsts) if firsts else None,
        "last_order_at": max(lasts) if lasts else None,
        "latest": [
            {
                "order_id": row.id,
                "number": row.number,
                "channel": row.channel.value,
                "fulfillment_type": row.fulfillment_type.value,
                "store_id": row.store_id,
                "store_name": row.name,
                "status": row.status.value,
                "currency": row.currency,
                "total": row.total,
                "placed_at": row.placed_at,
            }
            for row in latest
        ],
    }


@erase_step("orders")
def forget_order_contacts(session: Session, member_ids: list[uuid.UUID]) -> dict[str, Any]:
    """Her orders keep what the books need (lines, amounts, stores, dates) under her
    pseudonymous id; the contact name, phone, address and note she gave are blanked, and so are
    her quotes' addresses.

    Refused (409, and nothing is erased) while an order of hers is under way: its rider or
    clerk still needs her contact and address. Finish or cancel it first.
    """
    open_orders = session.scalars(
        select(Order.number)
        .where(Order.member_id.in_(member_ids), Order.status.in_(UNDER_WAY))
        .order_by(Order.number)
    ).all()
    if open_orders:
        raise Conflict(
            f"Her orders {', '.join(open_orders)} are under way and need her contact details: "
            "finish or cancel them, then erase her.",
            open_orders=list(open_orders),
        )
    orders = session.execute(
        update(Order)
        .where(Order.member_id.in_(member_ids))
        .values(
            contact_name=None,
            contact_phone_masked=None,
            contact_phone_sealed=None,
            address=None,
            note=None,
        )
        .execution_options(synchronize_session=False)
    )
    quotes = session.execute(
        update(Quote)
        .where(Quote.member_id.in_(member_ids))
        .values(address=None)
        .execution_options(synchronize_session=False)
    )
    return {
        "orders": orders.rowcount,  # type: ignore[attr-defined]
        "quotes": quotes.rowcount,  # type: ignore[attr-defined]
    }


@erase_step("released_quotes")
def release_open_quotes(session: Session, member_ids: list[uuid.UUID]) -> int:
    """Her open quotes (not placed, not expired) let go of the stock they hold, now, in her
    erasure's transaction: nobody can place them any more (a placing refuses her, 409
    ``member-erased``), so their stock is available again at once rather than when the holds
    run out. A quote she placed is an order, and keeps its stock. How many quotes let go.

    Locks in the order the use cases take them: her row (the erasure's, which a placing waits
    for before it claims a quote), her open quotes, their holds, then all their stock by
    (location, SKU), before any balance changes. Letting go of the quotes one after the other
    would lock one quote's stock after another's, against the order a checkout holding both
    SKUs locks them in.
    """
    open_quotes = session.execute(
        select(Quote.id, Quote.reservation_ids)
        .where(
            Quote.member_id.in_(member_ids),
            Quote.order_id.is_(None),
            Quote.expires_at > utcnow(),
        )
        .order_by(Quote.id)
        .with_for_update()
    ).all()
    holds = in_lock_order(session, [h for quote in open_quotes for h in quote.reservation_ids])
    stock: dict[uuid.UUID, set[uuid.UUID]] = {}
    for reservation_id in holds:
        reservation = get_reservation(session, reservation_id)
        stock.setdefault(reservation.location_id, set()).update(x.sku_id for x in reservation.lines)
    lock_holds_and_stock(session, holds, stock)
    for reservation_id in holds:
        release_reservation(session, reservation_id)
    return len(open_quotes)
