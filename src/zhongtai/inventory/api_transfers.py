"""HTTP endpoints of transfers between locations: request, approve, ship, receive, cancel."""

from __future__ import annotations

import uuid

from fastapi import Depends, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import StoreOutOfScope
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.inventory import transfers
from zhongtai.inventory.rules import Line
from zhongtai.inventory.schemas import TransferIn, TransferOut, TransferReceiptIn

router = api_router(tags=["inventory: transfers"])
ADJUST = Depends(require(Permission.INVENTORY_ADJUST))
FLOOR = Depends(require(Permission.INVENTORY_RECEIVE))


@router.post(
    "/inventory/transfers", response_model=TransferOut, status_code=status.HTTP_201_CREATED
)
def request_transfer(
    body: TransferIn, principal: Principal = ADJUST, session: Session = Depends(db_session)
) -> TransferOut:
    """Ask for stock to move (a manager of either end, or HQ). Nothing moves yet."""
    if not (
        principal.covers_store(body.from_location_id) or principal.covers_store(body.to_location_id)
    ):
        principal.ensure_store(body.to_location_id)
    transfer = transfers.request_transfer(
        session,
        body.from_location_id,
        body.to_location_id,
        [x.line() for x in body.lines],
        note=body.note,
    )
    return TransferOut.model_validate(transfer)


@router.get("/inventory/transfers/{transfer_id}", response_model=TransferOut)
def get_transfer(
    transfer_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.INVENTORY_READ)),
    session: Session = Depends(db_session),
) -> TransferOut:
    transfer = transfers.get_transfer(session, transfer_id)
    if not principal.covers_store(transfer.to_location_id):
        principal.ensure_store(transfer.from_location_id)
    return TransferOut.model_validate(transfer)


def _source(session: Session, principal: Principal, transfer_id: uuid.UUID) -> None:
    principal.ensure_store(transfers.get_transfer(session, transfer_id).from_location_id)


@router.post("/inventory/transfers/{transfer_id}/approve", response_model=TransferOut)
def approve(
    transfer_id: uuid.UUID, principal: Principal = ADJUST, session: Session = Depends(db_session)
) -> TransferOut:
    """The sending location's manager (or HQ) agrees to give the stock.

    422 naming ``to_location_id`` when the receiver closed since the transfer was asked for.
    """
    _source(session, principal, transfer_id)
    return TransferOut.model_validate(transfers.approve_transfer(session, transfer_id))


@router.post("/inventory/transfers/{transfer_id}/cancel", response_model=TransferOut)
def cancel(
    transfer_id: uuid.UUID, principal: Principal = ADJUST, session: Session = Depends(db_session)
) -> TransferOut:
    """Call the transfer off before it ships: the sending location's manager, or HQ.

    The receiving store may not (403): it records goods it never got as a shortfall when it
    receives the transfer.
    """
    sender = transfers.get_transfer(session, transfer_id).from_location_id
    if not principal.covers_store(sender):
        raise StoreOutOfScope(
            f"Transfer {transfer_id} can be cancelled only by its sending location {sender} "
            "or by HQ. The receiving store cannot cancel it: ask the sender to, or, once the "
            "goods are shipped, receive the transfer with the counts that arrived (a shortfall "
            "stays recorded on it).",
            store_id=str(sender),
            transfer_id=str(transfer_id),
        )
    return TransferOut.model_validate(transfers.cancel_transfer(session, transfer_id))


@router.post("/inventory/transfers/{transfer_id}/ship", response_model=TransferOut)
def ship(
    transfer_id: uuid.UUID, principal: Principal = FLOOR, session: Session = Depends(db_session)
) -> TransferOut:
    """The goods left the sender: its on-hand drops, the receiver's in-transit rises.

    409 when the receiver closed since the transfer was asked for: nothing is dispatched.
    """
    _source(session, principal, transfer_id)
    return TransferOut.model_validate(transfers.ship_transfer(session, transfer_id))


@router.post("/inventory/transfers/{transfer_id}/receive", response_model=TransferOut)
def receive(
    transfer_id: uuid.UUID,
    body: TransferReceiptIn,
    principal: Principal = FLOOR,
    session: Session = Depends(db_session),
) -> TransferOut:
    """The goods arrived: the counted quantities (default: as shipped) enter on-hand.

    Received once: the same receipt sent again answers the first; other counts are 409
    ``transfer-received-otherwise`` naming each line that differs.
    """
    principal.ensure_store(transfers.get_transfer(session, transfer_id).to_location_id)
    counted = [Line(x.sku_id, x.quantity) for x in body.lines]  # a repeated SKU is refused
    return TransferOut.model_validate(transfers.receive_transfer(session, transfer_id, counted))
