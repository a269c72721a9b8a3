"""Use cases of reservations: hold a basket's stock, confirm it as a shipment, release, expire.

A basket is all-or-nothing and idempotent by its reference (a checkout or order id); holding
is :func:`holds.hold_baskets` (for one basket here, for a batch at the reservation desk).
Balance rows are changed in :func:`rules.lock_order` (by SKU id), each by one conditional
UPDATE, so concurrent baskets never oversell and never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, DomainError, NotFound
from zhongtai.core.jobs import PeriodicJob
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.hold_claims import RESERVATIONS
from zhongtai.inventory.hold_records import LINES
from zhongtai.inventory.hold_requests import REFERENCE_MAX, Reserved, hold_request
from zhongtai.inventory.holds import hold_baskets
from zhongtai.inventory.ledger import BALANCES, announce, change_balance, write_movement
from zhongtai.inventory.models import MovementKind, Reservation, ReservationStatus
from zhongtai.inventory.rules import Line, Step, atp, lock_order, reservation_step

__all__ = [
    "LINES",
    "REFERENCE_MAX",
    "RESERVATIONS",
    "Reserved",
    "confirm_reservation",
    "expire_reservations",
    "get_reservation",
    "in_lock_order",
    "release_reservation",
    "reserve",
    "select_reservation_by_reference",
]


def select_reservation_by_reference(reference: str) -> Select[Reservation]:
    return select(Reservation).where(Reservation.reference == reference)


def get_reservation(session: Session, reservation_id: uuid.UUID) -> Reservation:
    reservation = session.get(Reservation, reservation_id, populate_existing=True)
    if reservation is None:
        raise NotFound(f"No reservation {reservation_id}.")
    return reservation


def in_lock_order(session: Session, reservation_ids: Sequence[str]) -> list[uuid.UUID]:
    """An order's holds (each one location's stock) in the order their stock is locked in:
    by location. A step that confirms or releases several walks them so; checkouts since list
    a split parcel's holds so already, but an order may be older than that."""
    ids = [uuid.UUID(x) for x in reservation_ids]
    if len(ids) < 2:
        return ids
    ordered = list(
        session.scalars(
            select(Reservation.id)
            .where(Reservation.id.in_(ids))
            .order_by(Reservation.location_id, Reservation.id)
        )
    )
    return ordered + [x for x in ids if x not in ordered]  # a lost one fails where it is used


def reserve(
    session: Session,
    reference: str,
    location_id: uuid.UUID,
    lines: Sequence[Line],
    ttl: timedelta,
    *,
    channel: str | None = None,
    now: datetime | None = None,
) -> Reserved:
    """Hold every line of a basket at one location until ``now + ttl``, or nothing at all.

    A retry with the same reference (and basket) answers the existing reservation. A line
    that cannot be held rolls the whole basket back and answers 409 ``insufficient-stock``
    naming the SKU and what is available. With a ``channel``, only what the channel's
    allocation lets it sell is available (checked in the same statement).
    """
    request = hold_request(reference, location_id, lines, ttl, channel=channel, now=now)
    [outcome] = hold_baskets(session, [request])
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def _claim_step(
    session: Session, reservation_id: uuid.UUID, wanted: ReservationStatus
) -> Reservation | None:
    """Move an active reservation to ``wanted`` in one statement: the loaded row, or None when
    it was already where the caller wants it. 409 for an illegal step, 404 when unknown."""
    reservation = get_reservation(session, reservation_id)
    step = reservation_step(reservation.status, wanted)
    if step is Step.APPLY:
        claimed = session.execute(
            update(RESERVATIONS)
            .where(
                RESERVATIONS.c.id == reservation_id,
                RESERVATIONS.c.status == ReservationStatus.ACTIVE,
            )
            .values(status=wanted, updated_at=utcnow())
            .returning(RESERVATIONS.c.id)
        ).first()
        if claimed is not None:
            return reservation
        # Someone settled it between our read and our claim: judge again on what they did.
        reservation = get_reservation(session, reservation_id)
        step = reservation_step(reservation.status, wanted)
    if step is Step.ALREADY:
        return None
    raise Conflict(
        f"Reservation {reservation_id} is {reservation.status.value}; it cannot become "
        f"{wanted.value}.",
        status_now=reservation.status.value,
    )


def confirm_reservation(session: Session, reservation_id: uuid.UUID) -> Reservation:
    """The order was fulfilled: the held stock leaves as a shipment (on-hand and reserved drop).

    409 ``insufficient-stock`` when on-hand is short of a line (a POS sale took the goods);
    the reservation then stays active until the stock is counted or it is released.
    """
    with session.begin_nested():
        reservation = _claim_step(session, reservation_id, ReservationStatus.CONFIRMED)
        if reservation is None:
            return get_reservation(session, reservation_id)
        location_id = reservation.location_id
        for line in lock_order([Line(x.sku_id, x.quantity) for x in reservation.lines]):
            figures = change_balance(
                session,
                location_id,
                line.sku_id,
                on_hand=-line.quantity,
                reserved=-line.quantity,
                condition=BALANCES.c.on_hand >= line.quantity,
            )
            if figures is None:
                raise InsufficientStock(
                    location_id=location_id,
                    sku_id=line.sku_id,
                    requested=line.quantity,
                    available=_on_hand(session, location_id, line.sku_id),
                )
            write_movement(
                session,
                figures,
                kind=MovementKind.SHIPMENT,
                quantity=-line.quantity,
                reserved_delta=-line.quantity,
                reference_type="reservation",
                reference_id=reservation.reference,
            )
    return get_reservation(session, reservation_id)


def _on_hand(session: Session, location_id: uuid.UUID, sku_id: uuid.UUID) -> int:
    value = session.scalar(
        select(BALANCES.c.on_hand).where(
            BALANCES.c.location_id == location_id, BALANCES.c.sku_id == sku_id
        )
    )
    return max(0, value or 0)


def _unhold(session: Session, location_id: uuid.UUID, line: Line, cause: str) -> None:
    figures = change_balance(session, location_id, line.sku_id, reserved=-line.quantity)
    if figures is None:  # a held line always has its balance row; losing it is a bug
        raise RuntimeError(f"no balance row for held stock {location_id}/{line.sku_id}")
    announce(
        session,
        figures,
        cause=cause,
        quantity=-line.quantity,
        atp_before=atp(figures.on_hand, figures.reserved + line.quantity, figures.safety_stock),
    )


def release_reservation(session: Session, reservation_id: uuid.UUID) -> Reservation:
    """The checkout or order was cancelled: the held stock is available again."""
    reservation = _claim_step(session, reservation_id, ReservationStatus.RELEASED)
    if reservation is not None:
        for line in lock_order([Line(x.sku_id, x.quantity) for x in reservation.lines]):
            _unhold(session, reservation.location_id, line, "released")
    return get_reservation(session, reservation_id)


#: Reservations one transaction of the sweeper expires at most.
SWEEP_BATCH = 100


def reservation_sweeper(every_seconds: float) -> PeriodicJob:
    """The housekeeping job expiring overdue holds, a batch per transaction until none are due."""
    return PeriodicJob(
        "reservation-sweeper",
        every_seconds,
        partial(expire_reservations, batch=SWEEP_BATCH),
        chunk=SWEEP_BATCH,
    )


def expire_reservations(
    session: Session, now: datetime | None = None, *, batch: int = SWEEP_BATCH
) -> int:
    """Release up to ``batch`` active reservations past their expiry, oldest first; how many
    expired. Safe to rerun; the sweeper calls it again, a transaction each time, while it
    expires full batches (:class:`~zhongtai.core.jobs.PeriodicJob` ``chunk``).

    Reservations are claimed with ``FOR UPDATE SKIP LOCKED`` (one being confirmed or released
    right now is left to that transaction), then their stock is released per (location, SKU)
    in lock order, the order every checkout locks its rows in. One batch per transaction: a
    second batch in the same transaction would lock rows below ones the first holds, and a
    checkout holding one of those while waiting for one of these would deadlock with it.
    """
    now = now or utcnow()
    due = (
        select(RESERVATIONS.c.id)
        .where(
            RESERVATIONS.c.status == ReservationStatus.ACTIVE,
            RESERVATIONS.c.expires_at <= now,
        )
        .order_by(RESERVATIONS.c.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due))
    if not ids:
        return 0
    claimed = list(
        session.scalars(
            update(RESERVATIONS)
            .where(
                RESERVATIONS.c.id.in_(ids),
                RESERVATIONS.c.status == ReservationStatus.ACTIVE,
            )
            .values(status=ReservationStatus.EXPIRED, updated_at=utcnow())
            .returning(RESERVATIONS.c.id)
        )
    )
    held = session.execute(
        select(RESERVATIONS.c.location_id, LINES.c.sku_id, LINES.c.quantity)
        .join(LINES, LINES.c.reservation_id == RESERVATIONS.c.id)
        .where(RESERVATIONS.c.id.in_(claimed))
    ).all()
    totals: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for location_id, sku_id, quantity in held:
        totals[(location_id, sku_id)] = totals.get((location_id, sku_id), 0) + quantity
    for (location_id, sku_id), quantity in sorted(totals.items()):
        _unhold(session, location_id, Line(sku_id, quantity), "expired")
    return len(claimed)
