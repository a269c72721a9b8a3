"""A transfer receipt sent again: the same counts answer the first receipt, other counts are 409.

A store's handheld resends a receipt it got no answer for. The resend must not be mistaken for
a recount: once a receipt is recorded its counts stand, and a receipt with other counts is
another claim about the same goods, refused naming what differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory, line
from tests.races import race_database, until_another_backend_waits_for_a_lock
from zhongtai.catalog.models import Sku
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.inventory import service, transfers
from zhongtai.inventory.errors import TransferReceivedOtherwise
from zhongtai.inventory.models import MovementKind, StockBalance, StockMovement, TransferStatus
from zhongtai.stores.models import Location

BASE = "/api/v1/inventory"


def _in_transit(
    stock: StockFactory, quantities: list[int]
) -> tuple[Location, list[Sku], uuid.UUID]:
    """A store, SKUs, and a transfer of ``quantities`` of them from a DC, shipped."""
    dc, store = stock.location(), stock.location()
    skus = stock.skus(len(quantities))
    for sku in skus:
        stock.receive(dc, sku, 50)
    transfer = transfers.request_transfer(
        stock.session, dc.id, store.id, [line(s, q) for s, q in zip(skus, quantities, strict=True)]
    )
    transfers.approve_transfer(stock.session, transfer.id)
    transfers.ship_transfer(stock.session, transfer.id)
    stock.session.commit()
    return store, skus, transfer.id


def _on_hand(stock: StockFactory, store: Location, sku: Sku) -> int:
    balance = stock.balance(store, sku)
    return 0 if balance is None else balance.on_hand


def _receipts(session: Session, transfer_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(
                StockMovement.kind == MovementKind.TRANSFER_IN,
                StockMovement.reference_id == str(transfer_id),
            )
        )
        or 0
    )


def test_a_transfer_receipt_retried_with_the_same_counts_answers_the_first_receipt(
    session: Session, stock: StockFactory
) -> None:
    store, [a, b], tid = _in_transit(stock, [10, 4])
    transfers.receive_transfer(session, tid, [line(b, 3)])
    again = transfers.receive_transfer(session, tid, [line(b, 3)])
    assert again.status is TransferStatus.RECEIVED
    assert {(x.sku_id, x.received_quantity) for x in again.lines} == {(a.id, 10), (b.id, 3)}
    # Naming every line, or the lines in another order, is the same receipt too.
    spelled_out = transfers.receive_transfer(session, tid, [line(b, 3), line(a, 10)])
    assert spelled_out.status is TransferStatus.RECEIVED
    assert (_on_hand(stock, store, a), _on_hand(stock, store, b)) == (10, 3)
    assert _receipts(session, tid) == 2  # one movement per SKU, posted once
    assert service.verify_stock(session) == []


def test_a_transfer_receipt_retried_with_other_counts_gets_409_and_keeps_the_first_counts(
    session: Session, stock: StockFactory
) -> None:
    store, [a, b], tid = _in_transit(stock, [10, 4])
    transfers.receive_transfer(session, tid, [line(b, 3)])
    with pytest.raises(TransferReceivedOtherwise) as other:
        transfers.receive_transfer(session, tid, [line(a, 9), line(b, 3)])
    assert other.value.status == 409
    assert other.value.extra["differences"] == [
        {"field": "lines.0.quantity", "sku_id": str(a.id), "received": 10, "sent": 9}
    ]
    assert str(a.id) in other.value.detail and "10" in other.value.detail
    received = transfers.get_transfer(session, tid)
    assert {(x.sku_id, x.received_quantity) for x in received.lines} == {(a.id, 10), (b.id, 3)}
    assert (_on_hand(stock, store, a), _on_hand(stock, store, b)) == (10, 3)
    assert _receipts(session, tid) == 2
    assert service.verify_stock(session) == []


def test_a_receipt_without_counts_after_a_short_count_is_another_receipt_and_gets_409(
    session: Session, stock: StockFactory
) -> None:
    """No count means "as shipped": after a receipt that found one missing, that is another
    claim about the same goods, not a resend."""
    store, [sku], tid = _in_transit(stock, [4])
    transfers.receive_transfer(session, tid, [line(sku, 3)])
    with pytest.raises(TransferReceivedOtherwise) as other:
        transfers.receive_transfer(session, tid)
    assert other.value.extra["differences"] == [
        {"field": "lines", "sku_id": str(sku.id), "received": 3, "sent": 4}
    ]
    assert _on_hand(stock, store, sku) == 3


def test_a_receipt_resent_over_http_with_other_counts_gets_a_problem_naming_the_differing_line(
    client: TestClient, stock: StockFactory
) -> None:
    store, [a, b], tid = _in_transit(stock, [10, 4])
    clerk = stock.factory.staff_headers(Role.STORE_STAFF, [store])
    url = f"{BASE}/transfers/{tid}/receive"
    first = {"lines": [{"sku_id": str(b.id), "quantity": 3}]}
    assert client.post(url, json=first, headers=clerk).status_code == 200
    resent = client.post(url, json=first, headers=clerk)
    assert resent.status_code == 200, resent.text
    assert [x["received_quantity"] for x in resent.json()["lines"]] == [
        q for _, q in sorted([(a.id, 10), (b.id, 3)])
    ]
    other = {"lines": [{"sku_id": str(b.id), "quantity": 4}]}
    r = client.post(url, json=other, headers=clerk)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/transfer-received-otherwise")
    assert problem["transfer_id"] == str(tid)
    assert problem["differences"] == [
        {"field": "lines.0.quantity", "sku_id": str(b.id), "received": 3, "sent": 4}
    ]
    assert (_on_hand(stock, store, a), _on_hand(stock, store, b)) == (10, 3)


# --- on PostgreSQL: two handhelds receiving the same transfer at once ------------------------


@pytest.fixture(scope="module")
def pg_db() -> Iterator[Database]:
    with race_database("zt_transfer_receipts", pool_size=4) as database:
        yield database


@pytest.mark.postgres_only
def test_a_receipt_with_other_counts_arriving_while_the_first_commits_gets_409_and_posts_nothing(
    pg_db: Database,
) -> None:
    """The second receipt read the transfer as shipped and waits for the first one's claim:
    once that commits, it must compare with the counts the first recorded, not post its own."""
    with pg_db.writer() as s:
        stock = StockFactory(s, Factory(s))
        store, [sku], tid = _in_transit(stock, [10])
        store_id, sku_id = store.id, sku.id
    outcome: list[object] = []

    def second_handheld() -> None:
        try:
            with pg_db.writer() as s, s.begin():
                outcome.append(transfers.receive_transfer(s, tid, [service.Line(sku_id, 10)]))
        except TransferReceivedOtherwise as refused:
            outcome.append(refused)

    with pg_db.writer() as first, ThreadPoolExecutor(1) as pool:
        transfers.receive_transfer(first, tid, [service.Line(sku_id, 9)])
        pid = first.execute(text("SELECT pg_backend_pid()")).scalar_one()
        done = pool.submit(second_handheld)
        try:
            done.result(timeout=1)
        except TimeoutError:  # waiting for the first receipt, as it should
            until_another_backend_waits_for_a_lock(pg_db, pid)
        first.commit()
        done.result(timeout=30)
    [answer] = outcome
    assert isinstance(answer, TransferReceivedOtherwise), answer
    assert answer.extra["differences"] == [
        {"field": "lines.0.quantity", "sku_id": str(sku_id), "received": 9, "sent": 10}
    ]
    with pg_db.reader() as s:
        balance = s.get(StockBalance, (store_id, sku_id))
        assert balance is not None and (balance.on_hand, balance.in_transit) == (9, 0)
        assert _receipts(s, tid) == 1
        assert service.verify_stock(s) == []
