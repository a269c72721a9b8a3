"""On PostgreSQL, a cancel racing an approval (or a dispatch): exactly one wins, over real HTTP.

Each race is played two ways. Deterministically: one step is taken in a transaction left open
while the other arrives as an HTTP request and waits for its lock; then the first commits and
the request must answer 409 naming the state it found. A stocktake is also raced all at once:
many clients, some approving and some cancelling, released together; the winners are all of one
kind. (A transfer is not: cancelling an approved transfer is a legal step of its own, so a
cancel sent just after an approval committed rightly cancels it.)
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory, line
from tests.live_server import LiveServer
from tests.races import (
    MANY_CONNECTIONS,
    race_server,
    requests_at_once,
    until_another_backend_waits_for_a_lock,
)
from zhongtai.core.auth.roles import Role
from zhongtai.inventory import service, stocktakes, transfers
from zhongtai.inventory.models import (
    MovementKind,
    StockBalance,
    StockMovement,
    StocktakeStatus,
    TransferStatus,
)
from zhongtai.stores.models import LocationKind

pytestmark = MANY_CONNECTIONS
BASE = "/api/v1/inventory"
CLIENTS = 12


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with race_server("zt_approval_race") as srv:
        yield srv


@pytest.fixture(scope="module")
def hq(server: LiveServer) -> dict[str, str]:
    with server.db.writer() as s:
        return Factory(s).staff_headers(Role.HQ_ADMIN)


def _while_open(
    server: LiveServer, first: Callable[[Session], object], then: Callable[[], httpx.Response]
) -> httpx.Response:
    """``first`` in a transaction left open while the request ``then`` is sent; once the
    request waits for a lock (or is done), ``first`` commits. The request's answer."""
    with server.db.writer() as s, ThreadPoolExecutor(1) as pool:
        first(s)
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        answer: Future[httpx.Response] = pool.submit(then)
        try:
            answer.result(timeout=1)
        except TimeoutError:  # waiting for the open transaction, as it should
            until_another_backend_waits_for_a_lock(server.db, pid)
        s.commit()
        return answer.result(timeout=30)


def _post(server: LiveServer, headers: dict[str, str], path: str) -> Callable[[], httpx.Response]:
    return lambda: httpx.post(f"{server.url}{BASE}{path}", headers=headers, timeout=30)


def _variances(s: Session, stocktake_id: uuid.UUID) -> int:
    return (
        s.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(
                StockMovement.kind == MovementKind.STOCKTAKE_VARIANCE,
                StockMovement.reference_id == str(stocktake_id),
            )
        )
        or 0
    )


# --- stocktakes ------------------------------------------------------------------------------


def _counted_stocktake(server: LiveServer) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A store with 10 units of a SKU, and a stocktake that counted 7 of them."""
    with server.db.writer() as s:
        stock = StockFactory(s, Factory(s))
        store, sku = stock.location(), stock.sku()
        stock.receive(store, sku, 10)
        take = stocktakes.open_stocktake(s, store.id)
        stocktakes.record_count(s, take.id, "shelf", [line(sku, 7)])
        s.commit()
        return store.id, sku.id, take.id


def _on_hand(server: LiveServer, store_id: uuid.UUID, sku_id: uuid.UUID) -> int:
    with server.db.reader() as s:
        balance = s.get(StockBalance, (store_id, sku_id))
        assert balance is not None
        return balance.on_hand


def test_a_stocktake_cancel_arriving_while_its_approval_commits_gets_409_naming_approved(
    server: LiveServer, hq: dict[str, str]
) -> None:
    store_id, sku_id, take_id = _counted_stocktake(server)
    r = _while_open(
        server,
        lambda s: stocktakes.approve_stocktake(s, take_id),
        _post(server, hq, f"/stocktakes/{take_id}/cancel"),
    )
    assert r.status_code == 409, r.text
    assert r.json()["status_now"] == "approved"
    assert "approved" in r.json()["detail"]
    with server.db.reader() as s:
        assert stocktakes.get_stocktake(s, take_id).status is StocktakeStatus.APPROVED
        assert _variances(s, take_id) == 1
        assert service.verify_stock(s) == []
    assert _on_hand(server, store_id, sku_id) == 7


def test_a_stocktake_approval_arriving_while_it_is_cancelled_gets_409_and_posts_nothing(
    server: LiveServer, hq: dict[str, str]
) -> None:
    store_id, sku_id, take_id = _counted_stocktake(server)
    r = _while_open(
        server,
        lambda s: stocktakes.cancel_stocktake(s, take_id),
        _post(server, hq, f"/stocktakes/{take_id}/approve"),
    )
    assert r.status_code == 409, r.text
    assert r.json()["status_now"] == "cancelled"
    with server.db.reader() as s:
        assert stocktakes.get_stocktake(s, take_id).status is StocktakeStatus.CANCELLED
        assert _variances(s, take_id) == 0
    assert _on_hand(server, store_id, sku_id) == 10


def test_approvals_and_cancels_of_one_stocktake_sent_at_once_have_one_kind_of_winner(
    server: LiveServer, hq: dict[str, str]
) -> None:
    store_id, sku_id, take_id = _counted_stocktake(server)
    url = f"{server.url}{BASE}/stocktakes/{take_id}"
    steps = ["approve" if i % 2 else "cancel" for i in range(CLIENTS)]
    responses = requests_at_once(
        [lambda c, step=step: c.post(f"{url}/{step}", headers=hq) for step in steps]  # type: ignore[misc]
    )
    winners = Counter(
        step for step, r in zip(steps, responses, strict=True) if r.status_code == 200
    )
    losers = [r for r in responses if r.status_code != 200]
    assert all(r.status_code == 409 for r in losers), [r.text for r in losers]
    with server.db.reader() as s:
        final = stocktakes.get_stocktake(s, take_id).status
        posted = _variances(s, take_id)
        assert service.verify_stock(s) == []
    if final is StocktakeStatus.APPROVED:
        assert winners == Counter({"approve": 1})  # a second approval would post again
        assert {r.json()["status_now"] for r in losers} == {"approved"}
        assert (posted, _on_hand(server, store_id, sku_id)) == (1, 7)
    else:
        assert final is StocktakeStatus.CANCELLED
        assert set(winners) == {"cancel"}  # a cancel sent again answers the cancellation
        assert {r.json()["status_now"] for r in losers} == {"cancelled"}
        assert (posted, _on_hand(server, store_id, sku_id)) == (0, 10)


# --- transfers -------------------------------------------------------------------------------


def _transfer(server: LiveServer, *, approved: bool) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A DC with 10 units of a SKU, and a transfer of 4 of them to a store (approved or not)."""
    with server.db.writer() as s:
        stock = StockFactory(s, Factory(s))
        dc, store, sku = stock.location(kind=LocationKind.DC), stock.location(), stock.sku()
        stock.receive(dc, sku, 10)
        transfer = transfers.request_transfer(s, dc.id, store.id, [line(sku, 4)])
        if approved:
            transfers.approve_transfer(s, transfer.id)
        s.commit()
        return dc.id, sku.id, transfer.id


def _status(server: LiveServer, transfer_id: uuid.UUID) -> TransferStatus:
    with server.db.reader() as s:
        return transfers.get_transfer(s, transfer_id).status


def test_a_transfer_cancel_arriving_while_it_is_approved_gets_409_naming_approved(
    server: LiveServer, hq: dict[str, str]
) -> None:
    """The canceller asked to call off a request; it was approved meanwhile. Cancelling an
    approved transfer is a decision of its own, taken knowing it was approved."""
    _, _, tid = _transfer(server, approved=False)
    r = _while_open(
        server,
        lambda s: transfers.approve_transfer(s, tid),
        _post(server, hq, f"/transfers/{tid}/cancel"),
    )
    assert r.status_code == 409, r.text
    assert r.json()["status_now"] == "approved"
    assert "meanwhile" in r.json()["detail"]
    assert _status(server, tid) is TransferStatus.APPROVED


def test_a_transfer_approval_arriving_while_it_is_cancelled_gets_409_naming_cancelled(
    server: LiveServer, hq: dict[str, str]
) -> None:
    _, _, tid = _transfer(server, approved=False)
    r = _while_open(
        server,
        lambda s: transfers.cancel_transfer(s, tid),
        _post(server, hq, f"/transfers/{tid}/approve"),
    )
    assert r.status_code == 409, r.text
    assert r.json()["status_now"] == "cancelled"
    assert _status(server, tid) is TransferStatus.CANCELLED


def test_a_transfer_cancel_arriving_while_it_is_dispatched_gets_409_and_the_goods_left_once(
    server: LiveServer, hq: dict[str, str]
) -> None:
    dc_id, sku_id, tid = _transfer(server, approved=True)
    r = _while_open(
        server,
        lambda s: transfers.ship_transfer(s, tid),
        _post(server, hq, f"/transfers/{tid}/cancel"),
    )
    assert r.status_code == 409, r.text
    assert r.json()["status_now"] == "shipped"
    assert _status(server, tid) is TransferStatus.SHIPPED
    assert _on_hand(server, dc_id, sku_id) == 6
    with server.db.reader() as s:
        assert service.verify_stock(s) == []


def test_a_dispatch_arriving_while_the_transfer_is_cancelled_gets_409_and_nothing_leaves(
    server: LiveServer, hq: dict[str, str]
) -> None:
    dc_id, sku_id, tid = _transfer(server, approved=True)
    r = _while_open(
        server,
        lambda s: transfers.cancel_transfer(s, tid),
        _post(server, hq, f"/transfers/{tid}/ship"),
    )
    assert r.status_code == 409, r.text
    assert r.json()["status_now"] == "cancelled"
    assert _status(server, tid) is TransferStatus.CANCELLED
    assert _on_hand(server, dc_id, sku_id) == 10
    with server.db.reader() as s:
        assert service.verify_stock(s) == []
