"""The held baskets on record: their lines in one INSERT, their reservations built as written.

Reading a batch's reservations back would cost a SELECT and an ORM load per basket, for
callers that mostly never look at them; the reservation is built from the request instead,
when first read, detached as if it had been loaded.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Table
from sqlalchemy.orm import Session, make_transient_to_detached

from zhongtai.inventory import pg_batches
from zhongtai.inventory.hold_requests import HoldRequest
from zhongtai.inventory.ledger import Figures
from zhongtai.inventory.models import Reservation, ReservationLine, ReservationStatus

LINES: Table = ReservationLine.__table__  # type: ignore[assignment]


def write_holds(
    session: Session,
    requests: list[HoldRequest],
    held: dict[int, list[Figures]],
    claimed: dict[str, uuid.UUID],
    now: datetime,
) -> dict[int, Callable[[], Reservation]]:
    """Insert the lines of the held baskets; how to build each reservation as loaded."""
    if not held:
        return {}
    written = [
        (claimed[requests[i].reference], x.sku_id, x.quantity)
        for i in held
        for x in requests[i].lines
    ]
    if session.get_bind().dialect.name == "postgresql":
        pg_batches.insert_lines(session, written)
    else:
        session.execute(
            LINES.insert(),
            [{"reservation_id": r, "sku_id": s, "quantity": q} for r, s, q in written],
        )
    return {i: as_loaded(requests[i], claimed[requests[i].reference], now) for i in held}


def as_loaded(
    request: HoldRequest, reservation_id: uuid.UUID, now: datetime
) -> Callable[[], Reservation]:
    """How to build the reservation as it was written, when first read."""
    return functools.partial(_build, request, reservation_id, now)


def _build(request: HoldRequest, reservation_id: uuid.UUID, now: datetime) -> Reservation:
    """The reservation as it was written, without reading it back (a detached object)."""
    lines = [
        ReservationLine(reservation_id=reservation_id, sku_id=x.sku_id, quantity=x.quantity)
        for x in sorted(request.lines, key=lambda x: x.sku_id)
    ]
    reservation = Reservation(
        id=reservation_id,
        reference=request.reference,
        location_id=request.location_id,
        status=ReservationStatus.ACTIVE,
        expires_at=request.expires_at,
        channel=request.channel,
        actor=request.actor,
        created_at=now,
        updated_at=now,
        lines=lines,
    )
    # Detached as if loaded and then closed: reading it never goes back to the database.
    for line in lines:
        make_transient_to_detached(line)
    make_transient_to_detached(reservation)
    return reservation
