"""Transfers and the sites at their ends: closed locations, and who may call a transfer off."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory, line
from tests.races import race_database, until_another_backend_waits_for_a_lock
from zhongtai.catalog.models import Sku
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.inventory import service, transfers
from zhongtai.inventory.models import StockBalance, TransferStatus
from zhongtai.stores import service as stores
from zhongtai.stores.models import Location, LocationKind, LocationStatus

BASE = "/api/v1/inventory"


def _close(session: Session, location: Location) -> None:
    stores.update_location(session, location.id, status=LocationStatus.CLOSED)
    session.commit()


def _figures(stock: StockFactory, location: Location, sku: Sku) -> tuple[int, int]:
    balance = stock.balance(location, sku)
    return (0, 0) if balance is None else (balance.on_hand, balance.in_transit)


# --- closed sites ----------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["from_location_id", "to_location_id"])
def test_a_transfer_to_or_from_a_closed_location_is_refused_at_request_naming_the_field(
    session: Session, stock: StockFactory, end: str
) -> None:
    dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
    stock.receive(dc, sku, 10)
    closed = dc if end == "from_location_id" else store
    _close(session, closed)
    with pytest.raises(InvalidInput) as refused:
        transfers.request_transfer(session, dc.id, store.id, [line(sku, 2)])
    assert refused.value.errors == [{"field": end, "message": f"location {closed.id} is closed"}]


def test_a_transfer_request_to_a_closed_store_over_http_is_a_422_naming_to_location_id(
    client: TestClient, stock: StockFactory
) -> None:
    dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
    _close(stock.session, store)
    body = {
        "from_location_id": str(dc.id),
        "to_location_id": str(store.id),
        "lines": [{"sku_id": str(sku.id), "quantity": 1}],
    }
    r = client.post(
        f"{BASE}/transfers", json=body, headers=stock.factory.staff_headers(Role.HQ_ADMIN)
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {"field": "to_location_id", "message": f"location {store.id} is closed"}
    ]


def test_a_transfer_to_a_store_closed_since_it_was_requested_is_not_approved_naming_the_store(
    session: Session, stock: StockFactory
) -> None:
    """The same answer as asking for it now: a closed store takes no new transfer."""
    dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
    stock.receive(dc, sku, 10)
    transfer = transfers.request_transfer(session, dc.id, store.id, [line(sku, 4)])
    session.commit()
    _close(session, store)
    with pytest.raises(InvalidInput) as refused:
        transfers.approve_transfer(session, transfer.id)
    assert refused.value.status == 422
    assert refused.value.errors == [
        {"field": "to_location_id", "message": f"location {store.id} is closed"}
    ]
    assert transfers.get_transfer(session, transfer.id).status is TransferStatus.REQUESTED
    assert _figures(stock, dc, sku) == (10, 0)
    assert _figures(stock, store, sku) == (0, 0)
    # The sender may still call it off.
    assert transfers.cancel_transfer(session, transfer.id).status is TransferStatus.CANCELLED


def test_approving_a_transfer_to_a_closed_store_over_http_is_a_422_naming_to_location_id(
    client: TestClient, stock: StockFactory
) -> None:
    dc, _, tid = _requested(client, stock)
    store_id = transfers.get_transfer(stock.session, uuid.UUID(tid)).to_location_id
    store = stock.session.get(Location, store_id)
    assert store is not None
    _close(stock.session, store)
    sender = stock.factory.staff_headers(Role.STORE_MANAGER, [dc])
    r = client.post(f"{BASE}/transfers/{tid}/approve", headers=sender)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [
        {"field": "to_location_id", "message": f"location {store_id} is closed"}
    ]
    again = client.get(f"{BASE}/transfers/{tid}", headers=sender)
    assert again.json()["status"] == "requested"


def test_a_transfer_approved_before_its_store_closed_is_still_answered_as_approved(
    session: Session, stock: StockFactory
) -> None:
    """Approving again answers the approval given while the store was open; the dispatch is
    what a closed store refuses."""
    dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
    stock.receive(dc, sku, 10)
    transfer = transfers.request_transfer(session, dc.id, store.id, [line(sku, 4)])
    transfers.approve_transfer(session, transfer.id)
    _close(session, store)
    assert transfers.approve_transfer(session, transfer.id).status is TransferStatus.APPROVED


def test_an_approved_transfer_to_a_store_closed_meanwhile_is_not_dispatched_and_nothing_moves(
    session: Session, stock: StockFactory
) -> None:
    dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
    stock.receive(dc, sku, 10)
    transfer = transfers.request_transfer(session, dc.id, store.id, [line(sku, 4)])
    transfers.approve_transfer(session, transfer.id)
    _close(session, store)
    with pytest.raises(Conflict) as refused:
        transfers.ship_transfer(session, transfer.id)
    assert refused.value.status == 409
    assert refused.value.extra == {
        "location_id": str(store.id),
        "location_status": "closed",
        "field": "to_location_id",
    }
    assert transfers.get_transfer(session, transfer.id).status is TransferStatus.APPROVED
    assert _figures(stock, dc, sku) == (10, 0)
    assert _figures(stock, store, sku) == (0, 0)
    # The sender may still call it off.
    assert transfers.cancel_transfer(session, transfer.id).status is TransferStatus.CANCELLED
    assert service.verify_stock(session) == []


def test_goods_already_on_their_way_to_a_store_that_closed_are_still_received(
    session: Session, stock: StockFactory
) -> None:
    """Closing stops new dispatches; what is on the road arrives all the same and is counted."""
    dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
    stock.receive(dc, sku, 10)
    transfer = transfers.request_transfer(session, dc.id, store.id, [line(sku, 4)])
    transfers.approve_transfer(session, transfer.id)
    transfers.ship_transfer(session, transfer.id)
    _close(session, store)
    received = transfers.receive_transfer(session, transfer.id)
    assert received.status is TransferStatus.RECEIVED
    assert _figures(stock, store, sku) == (4, 0)
    assert service.verify_stock(session) == []


def test_an_approved_transfer_out_of_a_store_closed_meanwhile_may_still_ship_its_goods_out(
    session: Session, stock: StockFactory
) -> None:
    """A closing store's shelves are cleared by the transfers agreed before it closed."""
    store, dc, sku = stock.location(), stock.location(kind=LocationKind.DC), stock.sku()
    stock.receive(store, sku, 6)
    transfer = transfers.request_transfer(session, store.id, dc.id, [line(sku, 6)])
    transfers.approve_transfer(session, transfer.id)
    _close(session, store)
    assert transfers.ship_transfer(session, transfer.id).status is TransferStatus.SHIPPED
    assert _figures(stock, store, sku) == (0, 0)
    assert _figures(stock, dc, sku) == (0, 6)


# --- who may call a transfer off -------------------------------------------------------------


def _requested(client: TestClient, stock: StockFactory) -> tuple[Location, Location, str]:
    dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
    stock.receive(dc, sku, 10)
    body = {
        "from_location_id": str(dc.id),
        "to_location_id": str(store.id),
        "lines": [{"sku_id": str(sku.id), "quantity": 2}],
    }
    manager = stock.factory.staff_headers(Role.STORE_MANAGER, [store])
    r = client.post(f"{BASE}/transfers", json=body, headers=manager)
    assert r.status_code == 201, r.text
    return dc, store, r.json()["id"]


def test_the_receiving_store_cannot_cancel_a_transfer_and_is_told_who_can(
    client: TestClient, stock: StockFactory
) -> None:
    _, store, tid = _requested(client, stock)
    receiver = stock.factory.staff_headers(Role.STORE_MANAGER, [store])
    r = client.post(f"{BASE}/transfers/{tid}/cancel", headers=receiver)
    assert r.status_code == 403, r.text
    problem = r.json()
    assert problem["type"].endswith("/store-out-of-scope")
    assert "sending location" in problem["detail"] and "HQ" in problem["detail"]
    assert problem["transfer_id"] == tid
    assert transfers.get_transfer(stock.session, uuid.UUID(tid)).status is TransferStatus.REQUESTED


@pytest.mark.parametrize("who", ["sender", "hq"])
def test_the_sending_location_or_hq_cancels_a_transfer_not_yet_shipped(
    client: TestClient, stock: StockFactory, who: str
) -> None:
    dc, _, tid = _requested(client, stock)
    headers = (
        stock.factory.staff_headers(Role.STORE_MANAGER, [dc])
        if who == "sender"
        else stock.factory.staff_headers(Role.HQ_ADMIN)
    )
    r = client.post(f"{BASE}/transfers/{tid}/cancel", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"


# --- on PostgreSQL: a store closing while goods are dispatched to it -------------------------


@pytest.fixture(scope="module")
def pg_db() -> Iterator[Database]:
    with race_database("zt_transfer_sites", pool_size=4) as database:
        yield database


@pytest.mark.postgres_only
def test_a_dispatch_waits_for_a_store_closing_at_that_moment_and_then_is_refused(
    pg_db: Database,
) -> None:
    """The close is in flight when the goods are dispatched: the dispatch must not read the
    store as still open and send goods to it; it waits for the close, then answers 409."""
    with pg_db.writer() as s:
        stock = StockFactory(s, Factory(s))
        dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
        stock.receive(dc, sku, 10)
        tid = transfers.request_transfer(s, dc.id, store.id, [line(sku, 4)]).id
        transfers.approve_transfer(s, tid)
        s.commit()
        dc_id, store_id, sku_id = dc.id, store.id, sku.id
    outcome: list[object] = []

    def dispatch() -> None:
        try:
            with pg_db.writer() as s, s.begin():
                outcome.append(transfers.ship_transfer(s, tid).status)
        except Conflict as refused:
            outcome.append(refused)

    with pg_db.writer() as closing:
        stores.update_location(closing, store_id, status=LocationStatus.CLOSED)
        closing.flush()
        pid = closing.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread = threading.Thread(target=dispatch)
        thread.start()
        thread.join(timeout=1)
        if thread.is_alive():  # waiting for the close, as it should
            until_another_backend_waits_for_a_lock(pg_db, pid)
        closing.commit()
        thread.join(timeout=30)
    [answer] = outcome
    assert isinstance(answer, Conflict), answer
    assert answer.extra["location_status"] == "closed"
    with pg_db.reader() as s:
        assert transfers.get_transfer(s, tid).status is TransferStatus.APPROVED
        assert s.get(StockBalance, (dc_id, sku_id)).on_hand == 10  # type: ignore[union-attr]
        assert s.get(StockBalance, (store_id, sku_id)) is None
        assert service.verify_stock(s) == []


@pytest.mark.postgres_only
def test_an_approval_waits_for_a_store_closing_at_that_moment_and_then_is_refused(
    pg_db: Database,
) -> None:
    """The close is in flight when the sender approves: the approval must not read the store
    as still open; it waits for the close, then answers 422 naming the store."""
    with pg_db.writer() as s:
        stock = StockFactory(s, Factory(s))
        dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
        stock.receive(dc, sku, 10)
        tid = transfers.request_transfer(s, dc.id, store.id, [line(sku, 4)]).id
        s.commit()
        store_id = store.id
    outcome: list[object] = []

    def approve() -> None:
        try:
            with pg_db.writer() as s, s.begin():
                outcome.append(transfers.approve_transfer(s, tid).status)
        except InvalidInput as refused:
            outcome.append(refused)

    with pg_db.writer() as closing:
        stores.update_location(closing, store_id, status=LocationStatus.CLOSED)
        closing.flush()
        pid = closing.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread = threading.Thread(target=approve)
        thread.start()
        thread.join(timeout=1)
        if thread.is_alive():  # waiting for the close, as it should
            until_another_backend_waits_for_a_lock(pg_db, pid)
        closing.commit()
        thread.join(timeout=30)
    [answer] = outcome
    assert isinstance(answer, InvalidInput), answer
    assert answer.errors == [
        {"field": "to_location_id", "message": f"location {store_id} is closed"}
    ]
    with pg_db.reader() as s:
        assert transfers.get_transfer(s, tid).status is TransferStatus.REQUESTED
