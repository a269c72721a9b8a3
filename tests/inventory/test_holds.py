"""Holding a batch of baskets in one transaction keeps every promise of a single reservation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tests.inventory.conftest import StockFactory, line
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.inventory import allocation, service
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.hold_requests import HoldRequest, Reserved, hold_request
from zhongtai.inventory.holds import hold_baskets
from zhongtai.inventory.models import ReservationStatus
from zhongtai.inventory.reservation_desk import ReservationDesk
from zhongtai.inventory.rules import Allocation, may_take
from zhongtai.stores.models import LocationStatus

TTL = timedelta(minutes=15)


def _ask(reference: str, store: object, *lines: service.Line, **kw: object) -> HoldRequest:
    return hold_request(reference, store.id, list(lines), TTL, **kw)  # type: ignore[attr-defined,arg-type]


def _reserved(stock: StockFactory, store: object, sku: object) -> int:
    b = stock.balance(store, sku)  # type: ignore[arg-type]
    return 0 if b is None else b.reserved


def test_baskets_of_one_hot_sku_are_held_in_arrival_order_until_it_runs_out(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    asks = [_ask(f"hot-{i}", store, line(sku, q)) for i, q in enumerate([2, 2, 2, 1])]
    outcomes = hold_baskets(session, asks)
    assert [type(o).__name__ for o in outcomes] == [
        "Reserved",
        "Reserved",
        "InsufficientStock",
        "Reserved",
    ]
    assert outcomes[2].extra["available"] == 1  # type: ignore[union-attr]
    assert _reserved(stock, store, sku) == 5
    assert service.verify_stock(session) == []


def test_a_short_line_drops_its_whole_basket_and_its_reference_stays_free(
    session: Session, stock: StockFactory
) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 10)
    stock.receive(store, b, 1)
    first, second, third = hold_baskets(
        session,
        [
            _ask("ab-1", store, line(a, 3), line(b, 1)),
            _ask("ab-2", store, line(a, 3), line(b, 1)),
            _ask("a-3", store, line(a, 3)),
        ],
    )
    assert isinstance(first, Reserved) and isinstance(third, Reserved)
    assert isinstance(second, InsufficientStock) and second.extra["sku_id"] == str(b.id)
    assert (_reserved(stock, store, a), _reserved(stock, store, b)) == (6, 1)
    with pytest.raises(InsufficientStock):  # nothing bound "ab-2": a retry is judged afresh
        service.reserve(session, "ab-2", store.id, [line(a, 3), line(b, 1)], TTL)
    assert service.verify_stock(session) == []


def test_a_reference_repeated_in_a_batch_holds_once_and_a_different_basket_is_refused(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    first, retry, other = hold_baskets(
        session,
        [
            _ask("twin", store, line(sku, 2)),
            _ask("twin", store, line(sku, 2)),
            _ask("twin", store, line(sku, 3)),
        ],
    )
    assert isinstance(first, Reserved) and first.created
    assert isinstance(retry, Reserved) and not retry.created
    assert retry.reservation.id == first.reservation.id
    assert isinstance(other, Conflict)
    assert _reserved(stock, store, sku) == 2


def test_bad_locations_and_unknown_skus_fail_only_their_own_basket(
    session: Session, stock: StockFactory
) -> None:
    store, closed, sku = stock.location(), stock.location(), stock.sku()
    closed.status = LocationStatus.CLOSED
    session.commit()
    stock.receive(store, sku, 10)
    unknown = stock.factory.new_id()
    good, at_closed, bad_sku = hold_baskets(
        session,
        [
            _ask("ok", store, line(sku, 1)),
            _ask("closed", closed, line(sku, 1)),
            _ask("ghost", store, line(sku, 1), line(unknown, 1)),
        ],
    )
    assert isinstance(good, Reserved)
    assert isinstance(at_closed, InvalidInput) and at_closed.errors is not None
    assert at_closed.errors[0]["field"] == "location_id"
    assert isinstance(bad_sku, InvalidInput) and bad_sku.errors is not None
    assert bad_sku.errors[0]["field"] == "lines.1.sku_id"
    assert _reserved(stock, store, sku) == 1


def test_each_basket_is_held_within_its_own_channels_allocation(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    allocation.set_allocation(session, "app", None, share_percent=50, keep_units=0)
    app_1, app_2, pos = hold_baskets(
        session,
        [
            _ask("app-1", store, line(sku, 4), channel="app"),
            _ask("app-2", store, line(sku, 4), channel="app"),  # 6 left: the app may take 3
            _ask("pos-1", store, line(sku, 6), channel="pos"),
        ],
    )
    assert isinstance(app_1, Reserved) and isinstance(pos, Reserved)
    assert isinstance(app_2, InsufficientStock) and app_2.extra["available"] == 3
    assert _reserved(stock, store, sku) == 10


def test_a_batch_announces_each_changed_balance_once_with_what_it_took(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 3)
    hold_baskets(session, [_ask(f"ev-{i}", store, line(sku, 1)) for i in range(3)])
    changed = [e.payload for e in stock.events("stock.changed", store)]
    assert [(p["cause"], p["quantity"], p["atp"]) for p in changed[-1:]] == [("reserved", 3, 0)]
    assert [e.payload["atp"] for e in stock.events("stock.out", store)] == [0]


def test_held_reservations_read_as_if_loaded(session: Session, stock: StockFactory) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 5)
    stock.receive(store, b, 5)
    [held] = hold_baskets(session, [_ask("read", store, line(b, 1), line(a, 2))])
    assert isinstance(held, Reserved)
    loaded = service.get_reservation(session, held.reservation.id)
    assert (loaded.reference, loaded.status, loaded.expires_at) == (
        held.reservation.reference,
        ReservationStatus.ACTIVE,
        held.reservation.expires_at,
    )
    assert [(x.sku_id, x.quantity) for x in held.reservation.lines] == [
        (x.sku_id, x.quantity) for x in loaded.lines
    ]


def test_the_desk_answers_each_caller_after_its_batch_committed(
    test_db: Database, session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 2)
    with ReservationDesk(test_db) as desk:
        held = desk.reserve("desk-1", store.id, [line(sku, 2)], TTL)
        with pytest.raises(InsufficientStock):
            desk.reserve("desk-2", store.id, [line(sku, 1)], TTL)
        with pytest.raises(InvalidInput):  # refused before it is queued
            desk.reserve("desk-3", store.id, [], TTL)
        again = desk.reserve("desk-1", store.id, [line(sku, 2)], TTL)
    assert held.created and not again.created
    assert service.get_reservation(session, held.reservation.id).status is ReservationStatus.ACTIVE
    assert _reserved(stock, store, sku) == 2
    assert service.verify_stock(session) == []


def test_a_coroutine_waits_for_its_batch_on_the_event_loop_and_gets_the_same_answers(
    test_db: Database, session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 3)

    async def shop(desk: ReservationDesk) -> tuple[list[Reserved | BaseException], Reserved]:
        answers = await asyncio.gather(
            *(desk.reserve_async(f"coro-{n}", store.id, [line(sku, 1)], TTL) for n in range(5)),
            return_exceptions=True,
        )
        with pytest.raises(InvalidInput):  # refused before it is queued
            await desk.reserve_async("coro-bad", store.id, [], TTL)
        again = await desk.reserve_async("coro-0", store.id, [line(sku, 1)], TTL)
        return answers, again

    with ReservationDesk(test_db, workers=1) as desk:  # one worker: strictly arrival order
        answers, again = asyncio.run(shop(desk))
    first, second, third, fourth, fifth = answers
    assert isinstance(first, Reserved) and isinstance(second, Reserved)
    assert isinstance(third, Reserved) and third.created
    assert isinstance(fourth, InsufficientStock) and isinstance(fifth, InsufficientStock)
    assert not again.created and again.reservation_id == first.reservation_id
    assert _reserved(stock, store, sku) == 3
    assert service.verify_stock(session) == []


@given(
    store_atp=st.integers(min_value=0, max_value=10_000),
    share=st.integers(min_value=0, max_value=100),
    keep=st.integers(min_value=0, max_value=50),
    quantities=st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=64),
)
def test_when_a_batch_total_fits_the_allocation_every_basket_fits_in_turn(
    store_atp: int, share: int, keep: int, quantities: list[int]
) -> None:
    """Why one conditional UPDATE of a batch's total may stand for judging baskets one by one."""
    rule = Allocation(share, keep)
    if not may_take(store_atp, rule, sum(quantities)):
        return
    left = store_atp
    for quantity in quantities:
        assert may_take(left, rule, quantity)
        left -= quantity
