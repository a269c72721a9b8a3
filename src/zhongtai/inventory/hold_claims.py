"""Claiming the references of a batch of holds: new ones become reservations, known ones retries.

A reference is the caller's idempotency key for a basket. Claiming them all in one
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` before any stock is touched is what makes a
retry answer its first reservation (or 409 for another basket) instead of holding twice, and
what makes two batches sharing references wait on each other in one order. A location that is
unknown or closed refuses its claim with a 422.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.core.ids import new_id
from zhongtai.inventory import pg_batches
from zhongtai.inventory.hold_requests import HoldRequest, Outcome, Reserved
from zhongtai.inventory.models import Reservation, ReservationStatus
from zhongtai.stores.models import Location, LocationStatus

RESERVATIONS: Table = Reservation.__table__  # type: ignore[assignment]
LOCATIONS: Table = Location.__table__  # type: ignore[assignment]


def check_locations(
    session: Session, requests: list[HoldRequest], indexes: list[int]
) -> dict[int, Outcome]:
    """422 for each of the requests at ``indexes`` whose location is unknown or closed."""
    if not indexes:
        return {}
    ids = {requests[i].location_id for i in indexes}
    found = session.execute(
        select(LOCATIONS.c.id, LOCATIONS.c.status).where(LOCATIONS.c.id.in_(ids))
    )
    status = {id_: state for id_, state in found}
    refused: dict[int, Outcome] = {}
    for i in indexes:
        location_id = requests[i].location_id
        if location_id not in status:
            refused[i] = InvalidInput.field("location_id", f"no location {location_id}")
        elif status[location_id] is not LocationStatus.ACTIVE:
            refused[i] = InvalidInput.field("location_id", f"location {location_id} is closed")
    return refused


def claim_references(
    session: Session, requests: list[HoldRequest], now: datetime
) -> dict[str, uuid.UUID]:
    """Insert a reservation per request unless its reference exists: reference -> new id.

    Rows go in reference order, so two transactions claiming overlapping references wait
    on the unique index in the same order; a concurrent twin waits until the first ends.
    """
    if not requests:
        return {}
    rows = [
        {
            "id": new_id(),
            "reference": r.reference,
            "location_id": r.location_id,
            "expires_at": r.expires_at,
            "channel": r.channel,
            "actor": r.actor,
        }
        for r in sorted(requests, key=lambda r: r.reference)
    ]
    if session.get_bind().dialect.name == "postgresql":
        return pg_batches.claim_references(session, rows, now)
    stmt = (
        sqlite.insert(RESERVATIONS)
        .on_conflict_do_nothing(index_elements=[RESERVATIONS.c.reference])
        .returning(RESERVATIONS.c.reference, RESERVATIONS.c.id)
    )
    extra = {"status": ReservationStatus.ACTIVE, "created_at": now, "updated_at": now}
    claimed = session.execute(stmt, [row | extra for row in rows])
    return {reference: id_ for reference, id_ in claimed}


def existing_holds(session: Session, requests: list[HoldRequest]) -> list[Outcome | None]:
    """Retries: the reservation of the same basket, or 409 when the reference holds another;
    None for a reference not taken (its location refused the claim)."""
    if not requests:
        return []
    found = {
        r.reference: r
        for r in session.scalars(
            select(Reservation).where(Reservation.reference.in_({x.reference for x in requests})),
            execution_options={"populate_existing": True},
        )
    }
    outcomes: list[Outcome | None] = []
    for r in requests:
        reservation = found.get(r.reference)
        if reservation is None:
            outcomes.append(None)
            continue
        same = reservation.location_id == r.location_id and {
            (x.sku_id, x.quantity) for x in reservation.lines
        } == {(x.sku_id, x.quantity) for x in r.lines}
        if same:
            outcomes.append(Reserved(False, reservation.id, _already(reservation)))
        else:
            outcomes.append(
                Conflict(
                    f"Reference {r.reference!r} already holds a different basket "
                    f"(reservation {reservation.id}); use a new reference.",
                    reservation_id=str(reservation.id),
                )
            )
    return outcomes


def release_claims(session: Session, reservation_ids: list[uuid.UUID]) -> None:
    """Delete the claimed reservations of baskets that could not be held, so that their
    references are free again (a retry with more stock may then hold them)."""
    if reservation_ids:
        session.execute(delete(RESERVATIONS).where(RESERVATIONS.c.id.in_(reservation_ids)))


def _already(reservation: Reservation) -> Callable[[], Reservation]:
    return lambda: reservation
