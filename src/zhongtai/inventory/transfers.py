"""Use cases of transfers between locations: request, approve, ship (in transit), receive.

Shipping takes the goods out of the source's on-hand (a transfer_out movement; only what is
available to promise may leave) and adds them to the destination's in-transit; receiving
moves the counted quantity into the destination's on-hand (transfer_in). Balance rows are
changed in one global order, by (location, SKU), like every other use case.

Each step is one conditional UPDATE of the transfer's status, so of two steps racing (an
approval and a cancel, a dispatch and a cancel) exactly one happens; the other answers 409
naming the status it found. A closed location takes no new transfer, in or out; a transfer to
a location closed meanwhile is neither approved nor dispatched; goods already on the road are
received, and a transfer agreed before its source closed may still clear that source's
shelves.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.inventory.checks import require_basket, require_location, require_skus
from zhongtai.inventory.errors import InsufficientStock, LocationClosed, TransferReceivedOtherwise
from zhongtai.inventory.ledger import BALANCES, change_balance, upsert_balance, write_movement
from zhongtai.inventory.models import (
    MovementKind,
    Transfer,
    TransferLine,
    TransferStatus,
)
from zhongtai.inventory.rules import Line, Step, atp, transfer_step
from zhongtai.stores.models import Location, LocationStatus

TRANSFERS: Table = Transfer.__table__  # type: ignore[assignment]
TRANSFER_LINES: Table = TransferLine.__table__  # type: ignore[assignment]
NOTE_MAX = 200


def get_transfer(session: Session, transfer_id: uuid.UUID) -> Transfer:
    transfer = session.get(Transfer, transfer_id, populate_existing=True)
    if transfer is None:
        raise NotFound(f"No transfer {transfer_id}.")
    return transfer


def request_transfer(
    session: Session,
    from_location_id: uuid.UUID,
    to_location_id: uuid.UUID,
    lines: Sequence[Line],
    *,
    note: str | None = None,
) -> Transfer:
    """Ask for stock to move from one location to another (nothing moves yet).

    Both ends must exist and be open: 422 naming ``from_location_id`` or ``to_location_id``.
    """
    if from_location_id == to_location_id:
        raise InvalidInput.field("to_location_id", "must differ from from_location_id")
    if note is not None and len(note) > NOTE_MAX:
        raise InvalidInput.field("note", f"must be at most {NOTE_MAX} characters")
    require_basket(lines)
    require_location(session, from_location_id, open_only=True, field="from_location_id")
    require_location(session, to_location_id, open_only=True, field="to_location_id")
    require_skus(session, [x.sku_id for x in lines])
    transfer = Transfer(
        from_location_id=from_location_id,
        to_location_id=to_location_id,
        note=note,
        requested_by=context.actor.get(),
        lines=[TransferLine(sku_id=x.sku_id, quantity=x.quantity) for x in lines],
    )
    session.add(transfer)
    session.flush()
    return transfer


def _claim(session: Session, transfer_id: uuid.UUID, wanted: TransferStatus) -> Transfer | None:
    """Move the transfer to ``wanted`` in one conditional statement: the transfer, or None when
    it already was there; 409 for an illegal step."""
    transfer = get_transfer(session, transfer_id)
    step = transfer_step(transfer.status.value, wanted.value)
    if step is Step.APPLY:
        values: dict[str, object] = {"status": wanted, "updated_at": utcnow()}
        if wanted is TransferStatus.APPROVED:
            values["approved_by"] = context.actor.get()
        elif wanted is TransferStatus.SHIPPED:
            values["shipped_at"] = utcnow()
        elif wanted is TransferStatus.RECEIVED:
            values["received_at"] = utcnow()
        claimed = session.execute(
            update(TRANSFERS)
            .where(TRANSFERS.c.id == transfer_id, TRANSFERS.c.status == transfer.status)
            .values(**values)
            .returning(TRANSFERS.c.id)
        ).first()
        if claimed is not None:
            return transfer
        # Another step won the row meanwhile (on PostgreSQL this UPDATE waited for it to
        # commit). Even when ``wanted`` is still a legal step from there (cancelling what was
        # approved meanwhile), the caller decided on a state that is gone: 409, not a retry.
        transfer = get_transfer(session, transfer_id)
        if transfer_step(transfer.status.value, wanted.value) is Step.ALREADY:
            return None
        raise Conflict(
            f"Transfer {transfer_id} became {transfer.status.value} meanwhile; it was not made "
            f"{wanted.value}. Look at it again before deciding.",
            status_now=transfer.status.value,
        )
    if step is Step.ALREADY:
        return None
    raise Conflict(
        f"Transfer {transfer_id} is {transfer.status.value}; it cannot become {wanted.value}."
        + _HINTS.get((transfer.status, wanted), ""),
        status_now=transfer.status.value,
    )


_HINTS = {
    (TransferStatus.SHIPPED, TransferStatus.CANCELLED): (
        " Its goods are on the road: the receiving store counts what arrives when receiving it."
    ),
}


def approve_transfer(session: Session, transfer_id: uuid.UUID) -> Transfer:
    """The sender agrees to give the stock (nothing moves yet); 409 unless requested.

    A destination closed since the request is refused as a request to it now would be (422
    naming ``to_location_id``), and the transfer stays requested for the sender to cancel.
    Approving again answers the approval given while it was open (the dispatch refuses it).
    """
    with session.begin_nested():
        transfer = _claim(session, transfer_id, TransferStatus.APPROVED)
        if transfer is not None:
            target = transfer.to_location_id
            if _destination_status(session, target) is not LocationStatus.ACTIVE:
                raise InvalidInput.field("to_location_id", f"location {target} is closed")
    return get_transfer(session, transfer_id)


def cancel_transfer(session: Session, transfer_id: uuid.UUID) -> Transfer:
    """Call a transfer off before it ships (requested or approved; cancelling again answers
    the cancellation). 409 once shipped: the goods are on the road and are received instead.

    Who may: the sending location (it owns the stock and the decision to give it) or HQ. The
    receiving store may not: goods it was sent but never got are a shortfall it records when
    receiving (counts below what was shipped), not a cancellation.
    """
    _claim(session, transfer_id, TransferStatus.CANCELLED)
    return get_transfer(session, transfer_id)


def ship_transfer(session: Session, transfer_id: uuid.UUID) -> Transfer:
    """The goods left the source: its on-hand drops, the destination's in-transit rises.

    409 ``insufficient-stock`` when the source cannot spare a line (reserved and safety stock
    stay), 409 ``location-closed`` when the destination closed since the transfer was asked
    for; nothing moves then. A source closed meanwhile may still ship: that clears its shelves.
    """
    with session.begin_nested():
        transfer = _claim(session, transfer_id, TransferStatus.SHIPPED)
        if transfer is None:
            return get_transfer(session, transfer_id)
        source, target = transfer.from_location_id, transfer.to_location_id
        _require_open_destination(session, target)
        steps = [(source, x.sku_id, x.quantity) for x in transfer.lines] + [
            (target, x.sku_id, x.quantity) for x in transfer.lines
        ]
        b = BALANCES.c
        for location_id, sku_id, quantity in sorted(steps):
            if location_id == target:
                upsert_balance(session, target, sku_id)
                change_balance(session, target, sku_id, in_transit=quantity)
                continue
            figures = change_balance(
                session,
                source,
                sku_id,
                on_hand=-quantity,
                condition=b.on_hand - b.reserved - b.safety_stock >= quantity,
            )
            if figures is None:
                raise InsufficientStock(
                    location_id=source,
                    sku_id=sku_id,
                    requested=quantity,
                    available=_available(session, source, sku_id),
                )
            write_movement(
                session,
                figures,
                kind=MovementKind.TRANSFER_OUT,
                quantity=-quantity,
                reference_type="transfer",
                reference_id=str(transfer_id),
            )
    return get_transfer(session, transfer_id)


def _destination_status(session: Session, location_id: uuid.UUID) -> LocationStatus | None:
    """The destination's status (None: gone), its row share-locked until the step commits, so
    a close in flight is waited for and seen, and one arriving later waits."""
    status: LocationStatus | None = session.scalar(
        select(Location.status).where(Location.id == location_id).with_for_update(read=True)
    )
    return status


def _require_open_destination(session: Session, location_id: uuid.UUID) -> None:
    """409 when the destination is closed (share-locked: see ``_destination_status``)."""
    status = _destination_status(session, location_id)
    if status is not LocationStatus.ACTIVE:
        state = "gone" if status is None else status.value
        raise LocationClosed(
            f"Location {location_id} is {state}: nothing is dispatched to it. Cancel the "
            "transfer, or send the goods elsewhere with a new one.",
            location_id=location_id,
            status=state,
            field="to_location_id",
        )


def _available(session: Session, location_id: uuid.UUID, sku_id: uuid.UUID) -> int:
    row = session.execute(
        select(BALANCES.c.on_hand, BALANCES.c.reserved, BALANCES.c.safety_stock).where(
            BALANCES.c.location_id == location_id, BALANCES.c.sku_id == sku_id
        )
    ).first()
    return 0 if row is None else atp(*row)


def _counted(shipped: Mapping[uuid.UUID, int], received: Sequence[Line]) -> dict[uuid.UUID, int]:
    """The counts of a receipt by SKU; 422 naming the line (``lines.<i>``) that repeats a SKU,
    names one not on the transfer or counts below zero."""
    counted: dict[uuid.UUID, int] = {}
    for i, x in enumerate(received):
        if x.sku_id in counted:
            raise InvalidInput.field(f"lines.{i}.sku_id", "repeats a SKU; give one line per SKU")
        if x.sku_id not in shipped:
            raise InvalidInput.field(f"lines.{i}.sku_id", f"SKU {x.sku_id} is not on this transfer")
        if x.quantity < 0:
            raise InvalidInput.field(f"lines.{i}.quantity", "a count cannot be negative")
        counted[x.sku_id] = x.quantity
    return counted


def receive_transfer(
    session: Session,
    transfer_id: uuid.UUID,
    received: Sequence[Line] = (),
) -> Transfer:
    """The goods arrived: what was counted (default: what was shipped) enters on-hand; the
    in-transit quantity is cleared. A shortfall stays visible on the transfer's lines.

    Received once. The same receipt sent again answers the first; a receipt with other counts
    is 409 ``transfer-received-otherwise`` naming each line that differs, and the recorded
    counts stand (a miscount found later is a stock adjustment or a stocktake).
    """
    transfer = get_transfer(session, transfer_id)
    shipped = {x.sku_id: x.quantity for x in transfer.lines}
    counted = _counted(shipped, received)
    if _claim(session, transfer_id, TransferStatus.RECEIVED) is None:
        _require_same_receipt(session, transfer_id, shipped, received)
        return get_transfer(session, transfer_id)
    target = transfer.to_location_id
    for sku_id in sorted(shipped):
        quantity = counted.get(sku_id, shipped[sku_id])
        figures = change_balance(
            session, target, sku_id, on_hand=quantity, in_transit=-shipped[sku_id]
        )
        if figures is None:  # shipping made the row; losing it is a bug
            raise RuntimeError(f"no balance row for in-transit stock {target}/{sku_id}")
        session.execute(
            update(TRANSFER_LINES)
            .where(TRANSFER_LINES.c.transfer_id == transfer_id, TRANSFER_LINES.c.sku_id == sku_id)
            .values(received_quantity=quantity)
        )
        if quantity:
            write_movement(
                session,
                figures,
                kind=MovementKind.TRANSFER_IN,
                quantity=quantity,
                reference_type="transfer",
                reference_id=str(transfer_id),
            )
    return get_transfer(session, transfer_id)


def _require_same_receipt(
    session: Session,
    transfer_id: uuid.UUID,
    shipped: Mapping[uuid.UUID, int],
    received: Sequence[Line],
) -> None:
    """409 unless ``received`` (a SKU without a line: as shipped) has the recorded counts.

    The counts are read here, after the claim: a receipt that won the transfer meanwhile has
    committed them before this one's claim found it received.
    """
    recorded: dict[uuid.UUID, int | None] = {
        sku_id: quantity
        for sku_id, quantity in session.execute(
            select(TRANSFER_LINES.c.sku_id, TRANSFER_LINES.c.received_quantity).where(
                TRANSFER_LINES.c.transfer_id == transfer_id
            )
        )
    }
    line_of = {x.sku_id: i for i, x in enumerate(received)}
    differences = []
    for sku_id in sorted(shipped):
        i = line_of.get(sku_id)
        sent = shipped[sku_id] if i is None else received[i].quantity
        if sent != recorded[sku_id]:
            differences.append(
                {
                    "field": "lines" if i is None else f"lines.{i}.quantity",
                    "sku_id": str(sku_id),
                    "received": recorded[sku_id],
                    "sent": sent,
                }
            )
    if differences:
        listed = "; ".join(
            f"SKU {x['sku_id']}: {x['received']} received, {x['sent']} sent" for x in differences
        )
        raise TransferReceivedOtherwise(
            f"Transfer {transfer_id} was received already with other counts ({listed}). A "
            "receipt is recorded once and its counts stand; correct a miscount with a stock "
            "adjustment.",
            transfer_id=str(transfer_id),
            differences=differences,
        )
