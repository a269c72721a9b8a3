"""Changes to an order's hold after checkout: keep it longer once paid, shrink it to what was
picked, and ship picked goods nobody held (a substitute); and lock first what such a step
changes when it changes rows of several kinds."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Table, case, delete, select, update
from sqlalchemy.orm import Session

from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.inventory.checks import require_basket, require_location, require_skus
from zhongtai.inventory.ledger import (
    Posted,
    announce,
    change_balance,
    upsert_balance,
    write_movement,
)
from zhongtai.inventory.models import (
    MovementKind,
    Reservation,
    ReservationLine,
    ReservationStatus,
)
from zhongtai.inventory.rules import Line, atp, lock_order
from zhongtai.inventory.stock import lock_stock_rows

_LINES: Table = ReservationLine.__table__  # type: ignore[assignment]


def extend_hold(session: Session, reservation_id: uuid.UUID, until: datetime) -> bool:
    """Keep an active hold until ``until`` (never shortens it): a paid order keeps its stock
    however long the store takes. False when the hold is no longer active."""
    result = session.execute(
        update(Reservation)
        .where(
            Reservation.id == reservation_id,
            Reservation.status == ReservationStatus.ACTIVE,
        )
        .values(
            expires_at=case((Reservation.expires_at < until, until), else_=Reservation.expires_at)
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def shrink_hold(session: Session, reservation_id: uuid.UUID, keep: Mapping[uuid.UUID, int]) -> None:
    """Hold only ``keep[sku]`` units of each named line (a short pick): the rest is available
    again at once. A line kept at 0 leaves the reservation; keeping more than held is refused."""
    reservation = session.scalars(
        select(Reservation).where(Reservation.id == reservation_id).with_for_update()
    ).one()
    if reservation.status is not ReservationStatus.ACTIVE:
        raise Conflict(
            f"Reservation {reservation_id} is {reservation.status.value}; only an active hold "
            "can shrink.",
            reservation_id=str(reservation_id),
        )
    held = {x.sku_id: x.quantity for x in reservation.lines}
    for sku_id, quantity in keep.items():
        if sku_id not in held:
            raise InvalidInput.field("keep", f"SKU {sku_id} is not held by {reservation_id}")
        if not 0 <= quantity <= held[sku_id]:
            raise InvalidInput.field(
                "keep", f"SKU {sku_id}: keep 0 to {held[sku_id]} units, not {quantity}"
            )
    freed = [Line(sku, held[sku] - q) for sku, q in keep.items() if held[sku] > q]
    for line in lock_order(freed):
        figures = change_balance(
            session, reservation.location_id, line.sku_id, reserved=-line.quantity
        )
        if figures is None:  # a held line always has its balance row; losing it is a bug
            raise RuntimeError(f"no balance row for held stock {line.sku_id}")
        announce(
            session,
            figures,
            cause="released",
            quantity=-line.quantity,
            atp_before=atp(figures.on_hand, figures.reserved + line.quantity, figures.safety_stock),
        )
        kept = keep[line.sku_id]
        where = (_LINES.c.reservation_id == reservation_id) & (_LINES.c.sku_id == line.sku_id)
        if kept:
            session.execute(update(_LINES).where(where).values(quantity=kept))
        else:
            session.execute(delete(_LINES).where(where))
    session.expire(reservation)


def ship_unheld(
    session: Session, location_id: uuid.UUID, lines: Sequence[Line], *, reference: str
) -> list[Posted]:
    """Goods that leave for an order without a hold (a substitute the picker took from the
    shelf): on-hand drops like a till sale, flagged if it goes below zero."""
    return _move_unheld(session, location_id, lines, reference, leaving=True)


def unship_unheld(
    session: Session, location_id: uuid.UUID, lines: Sequence[Line], *, reference: str
) -> list[Posted]:
    """Goods that left the shelf for an order without a hold go back on it (the order was
    cancelled before they left the store): on-hand rises as it fell, the ledger shows both."""
    return _move_unheld(session, location_id, lines, reference, leaving=False)


def _move_unheld(
    session: Session,
    location_id: uuid.UUID,
    lines: Sequence[Line],
    reference: str,
    *,
    leaving: bool,
) -> list[Posted]:
    require_location(session, location_id)
    require_basket(lines)
    require_skus(session, [x.sku_id for x in lines])
    sign = -1 if leaving else 1
    return [
        write_movement(
            session,
            upsert_balance(session, location_id, line.sku_id, on_hand=sign * line.quantity),
            kind=MovementKind.SHIPMENT,
            quantity=sign * line.quantity,
            reference_type="order",
            reference_id=reference,
            flag_negative=leaving,
        )
        for line in lock_order(lines)
    ]


def lock_holds_and_stock(
    session: Session,
    reservation_ids: Sequence[uuid.UUID],
    stock: Mapping[uuid.UUID, Collection[uuid.UUID]],
) -> None:
    """Lock these holds (in the order given), then each location's balance rows of these SKUs
    (``stock``: location -> SKUs), in the order every use case locks in: a hold before its
    stock, stock by (location, SKU). Missing balance rows are made.

    For a step that changes rows of several kinds one after the other, as packing does: it frees
    the short-picked units of each hold (their rows in order), then takes the substitutes off
    the shelf (their rows in order), and a substitute's row may come before a freed one. Done
    in that sequence the locks would not follow the order, and a checkout holding one row
    while waiting for another would deadlock with it.
    """
    for reservation_id in reservation_ids:
        session.execute(
            select(Reservation.id).where(Reservation.id == reservation_id).with_for_update()
        )
    for location_id in sorted(stock):
        lock_stock_rows(session, location_id, stock[location_id])
