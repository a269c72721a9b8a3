"""Edges of moving stock: recounts during sales, overlapping stocktakes, transfer receipts."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory, line
from tests.races import race_database, until_another_backend_waits_for_a_lock
from zhongtai.catalog.models import Sku
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict
from zhongtai.inventory import service, stocktakes, transfers
from zhongtai.inventory.models import StockBalance, Stocktake, StocktakeStatus, TransferStatus
from zhongtai.stores.models import Location

BASE = "/api/v1/inventory"
T = TypeVar("T")


def _on_hand(stock: StockFactory, location: Location, sku: Sku) -> int:
    balance = stock.balance(location, sku)
    return 0 if balance is None else balance.on_hand


# --- stocktakes ------------------------------------------------------------------------------


def test_a_zone_recounted_after_a_sale_is_held_against_the_book_of_the_recount(
    session: Session, stock: StockFactory
) -> None:
    """The recount's figure is of a later moment than the first sheet: comparing it with the
    first sheet's book would post the sale a second time, as a loss nobody had."""
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    take = stocktakes.open_stocktake(session, store.id)
    stocktakes.record_count(session, take.id, "shelf", [line(sku, 10)])
    service.record_pos_sale(session, store.id, [line(sku, 2)], reference="during-count")
    recounted = stocktakes.record_count(session, take.id, "shelf", [line(sku, 8)])
    assert [c.on_hand_at_count for c in recounted.counts] == [8]
    assert stocktakes.approve_stocktake(session, take.id) == []  # the shelf agrees with the book
    assert _on_hand(stock, store, sku) == 8
    assert service.verify_stock(session) == []


def test_a_location_is_counted_by_one_stocktake_at_a_time(
    session: Session, stock: StockFactory
) -> None:
    """Two open counts of one store would each post the same shortfall: the second waits."""
    store, other, sku = stock.location(), stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    first = stocktakes.open_stocktake(session, store.id)
    with pytest.raises(Conflict) as busy:
        stocktakes.open_stocktake(session, store.id)
    assert busy.value.extra["stocktake_id"] == str(first.id)
    stocktakes.open_stocktake(session, other.id)  # another location counts on its own
    stocktakes.record_count(session, first.id, "shelf", [line(sku, 8)])
    [posted] = stocktakes.approve_stocktake(session, first.id)
    assert posted.quantity == -2 and _on_hand(stock, store, sku) == 8
    again = stocktakes.open_stocktake(session, store.id)  # once approved, a new count may start
    stocktakes.record_count(session, again.id, "shelf", [line(sku, 8)])
    assert stocktakes.approve_stocktake(session, again.id) == []
    assert _on_hand(stock, store, sku) == 8
    assert service.verify_stock(session) == []


# --- transfer receipts -----------------------------------------------------------------------


def _shipped(stock: StockFactory, quantity: int) -> tuple[Location, Sku, uuid.UUID]:
    """A store and a SKU, and a transfer of ``quantity`` of it from a DC, shipped."""
    dc, store, sku = stock.location(), stock.location(), stock.sku()
    stock.receive(dc, sku, 50)
    transfer = transfers.request_transfer(stock.session, dc.id, store.id, [line(sku, quantity)])
    transfers.approve_transfer(stock.session, transfer.id)
    transfers.ship_transfer(stock.session, transfer.id)
    stock.session.commit()
    return store, sku, transfer.id


def test_a_receipt_naming_a_sku_twice_is_refused_and_receives_nothing(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku, tid = _shipped(stock, 10)
    clerk = stock.factory.staff_headers(Role.STORE_STAFF, [store])
    twice = {"lines": [{"sku_id": str(sku.id), "quantity": q} for q in (4, 6)]}
    r = client.post(f"{BASE}/transfers/{tid}/receive", json=twice, headers=clerk)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["lines.1.sku_id"]
    assert transfers.get_transfer(stock.session, tid).status is TransferStatus.SHIPPED
    assert _on_hand(stock, store, sku) == 0


def test_a_receipt_of_a_sku_not_on_the_transfer_names_the_line(
    client: TestClient, stock: StockFactory
) -> None:
    store, _, tid = _shipped(stock, 10)
    clerk = stock.factory.staff_headers(Role.STORE_STAFF, [store])
    stranger = {"lines": [{"sku_id": str(uuid.uuid4()), "quantity": 1}]}
    r = client.post(f"{BASE}/transfers/{tid}/receive", json=stranger, headers=clerk)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["lines.0.sku_id"]


def test_a_clerk_of_another_store_cannot_receive_the_transfer(
    client: TestClient, stock: StockFactory
) -> None:
    store, sku, tid = _shipped(stock, 10)
    elsewhere = stock.factory.staff_headers(Role.STORE_STAFF, [stock.location()])
    r = client.post(f"{BASE}/transfers/{tid}/receive", json={}, headers=elsewhere)
    assert r.status_code == 403 and r.json()["type"].endswith("/store-out-of-scope")
    assert transfers.get_transfer(stock.session, tid).status is TransferStatus.SHIPPED
    assert _on_hand(stock, store, sku) == 0


# --- on PostgreSQL: a transaction in flight and a second one arriving -----------------------


@pytest.fixture(scope="module")
def pg_db() -> Iterator[Database]:
    with race_database("zt_stocktake_race", pool_size=4) as database:
        yield database


def _store_with_stock(db: Database, on_hand: int) -> tuple[uuid.UUID, uuid.UUID]:
    with db.writer() as s:  # the factory commits as it builds
        stock = StockFactory(s, Factory(s))
        store, sku = stock.location(), stock.sku()
        stock.receive(store, sku, on_hand)
        return store.id, sku.id


def _meanwhile(db: Database, first: Callable[[Session], object], then: Callable[[Session], T]) -> T:
    """``first`` in a transaction left open while ``then`` runs in another; once ``then``
    waits for a lock (or is done), ``first`` commits. What ``then`` answered, or raised."""
    outcome: list[T] = []
    failure: list[Exception] = []

    def second() -> None:
        try:
            with db.writer() as s, s.begin():
                outcome.append(then(s))
        except Exception as exc:  # re-raised in the test's thread below
            failure.append(exc)

    with db.writer() as s:
        first(s)
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1)
        if thread.is_alive():  # it should be waiting for the first transaction
            until_another_backend_waits_for_a_lock(db, pid)
        s.commit()
        thread.join(timeout=30)
    if failure:
        raise failure[0]
    return outcome[0]


@pytest.mark.postgres_only
def test_a_sheet_recorded_while_the_count_is_approved_is_posted_never_lost(
    pg_db: Database,
) -> None:
    """A sheet in flight when the manager approves: the approval waits for it and posts it;
    the sheet never lands on an approved stocktake unposted."""
    store_id, sku_id = _store_with_stock(pg_db, 10)
    with pg_db.writer() as s, s.begin():
        take_id = stocktakes.open_stocktake(s, store_id).id
    _meanwhile(
        pg_db,
        lambda s: stocktakes.record_count(s, take_id, "shelf", [service.Line(sku_id, 7)]),
        lambda s: stocktakes.approve_stocktake(s, take_id),
    )
    with pg_db.reader() as s:
        take = stocktakes.get_stocktake(s, take_id)
        assert take.status is StocktakeStatus.APPROVED
        assert [c.counted for c in take.counts] == [7]
        balance = s.get(StockBalance, (store_id, sku_id))
        assert balance is not None and balance.on_hand == 7  # the shortfall of 3 was posted
        assert service.verify_stock(s) == []


@pytest.mark.postgres_only
def test_two_managers_opening_a_count_of_one_store_at_once_get_one_stocktake(
    pg_db: Database,
) -> None:
    store_id, _ = _store_with_stock(pg_db, 10)
    with pytest.raises(Conflict):
        _meanwhile(
            pg_db,
            lambda s: stocktakes.open_stocktake(s, store_id),
            lambda s: stocktakes.open_stocktake(s, store_id),
        )
    with pg_db.reader() as s:
        opened = s.scalars(select(Stocktake).where(Stocktake.location_id == store_id)).all()
        assert len(opened) == 1
