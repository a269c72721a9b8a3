"""Transfers: requested, approved, shipped (in transit), received with the counted quantity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from tests.inventory.conftest import StockFactory, line
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.inventory import service, transfers
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.models import TransferStatus


def _figures(stock: StockFactory, store: object, sku: object) -> tuple[int, int, int]:
    b = stock.balance(store, sku)  # type: ignore[arg-type]
    return (0, 0, 0) if b is None else (b.on_hand, b.reserved, b.in_transit)


def test_a_transfer_moves_stock_through_transit_and_posts_what_arrived(
    session: Session, stock: StockFactory
) -> None:
    dc, store, a, b = stock.location(), stock.location(), stock.sku(), stock.sku()
    stock.receive(dc, a, 100)
    stock.receive(dc, b, 100)
    transfer = transfers.request_transfer(session, dc.id, store.id, [line(a, 10), line(b, 4)])
    assert transfer.status is TransferStatus.REQUESTED
    assert _figures(stock, dc, a) == (100, 0, 0)  # requesting moves nothing
    transfers.approve_transfer(session, transfer.id)
    transfers.ship_transfer(session, transfer.id)
    assert _figures(stock, dc, a) == (90, 0, 0)
    assert _figures(stock, store, a) == (0, 0, 10)
    assert service.verify_stock(session) == []
    received = transfers.receive_transfer(
        session, transfer.id, [line(b, 3)]
    )  # one broke on the way
    assert received.status is TransferStatus.RECEIVED
    assert {(x.sku_id, x.quantity, x.received_quantity) for x in received.lines} == {
        (a.id, 10, 10),
        (b.id, 4, 3),
    }
    assert _figures(stock, store, a) == (10, 0, 0)
    assert _figures(stock, store, b) == (3, 0, 0)
    resent = transfers.receive_transfer(session, transfer.id, [line(b, 3)])
    assert resent.status is TransferStatus.RECEIVED
    assert _figures(stock, store, a) == (10, 0, 0)  # receiving twice changes nothing
    assert service.verify_stock(session) == []


def test_only_available_stock_can_be_shipped_and_a_short_line_ships_nothing(
    session: Session, stock: StockFactory
) -> None:
    dc, store, a, b = stock.location(), stock.location(), stock.sku(), stock.sku()
    stock.receive(dc, a, 10)
    stock.receive(dc, b, 5)
    service.reserve(session, "held-at-dc", dc.id, [line(b, 3)], timedelta(minutes=5))
    transfer = transfers.request_transfer(session, dc.id, store.id, [line(a, 2), line(b, 3)])
    transfers.approve_transfer(session, transfer.id)
    with pytest.raises(InsufficientStock) as short:
        transfers.ship_transfer(session, transfer.id)
    assert short.value.extra["sku_id"] == str(b.id) and short.value.extra["available"] == 2
    assert transfers.get_transfer(session, transfer.id).status is TransferStatus.APPROVED
    assert _figures(stock, dc, a) == (10, 0, 0)
    assert _figures(stock, store, a) == (0, 0, 0)
    assert service.verify_stock(session) == []


def test_a_transfer_to_itself_or_an_illegal_step_is_refused(
    session: Session, stock: StockFactory
) -> None:
    store, other, sku = stock.location(), stock.location(), stock.sku()
    with pytest.raises(InvalidInput) as itself:
        transfers.request_transfer(session, store.id, store.id, [line(sku, 1)])
    assert itself.value.errors == [
        {"field": "to_location_id", "message": "must differ from from_location_id"}
    ]
    transfer = transfers.request_transfer(session, store.id, other.id, [line(sku, 1)])
    with pytest.raises(Conflict):
        transfers.ship_transfer(session, transfer.id)  # not approved yet
    transfers.cancel_transfer(session, transfer.id)
    with pytest.raises(Conflict):
        transfers.approve_transfer(session, transfer.id)
