"""Baskets that share no balance row are held in two statements on PostgreSQL, with the same
outcomes, rows and events as the general path (on SQLite these run the general path and hold
it to the same specification)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.inventory.conftest import StockFactory, line
from zhongtai.core.outbox import OutboxEvent
from zhongtai.inventory import allocation, service
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.events import StockChanged, StockLow, StockOut
from zhongtai.inventory.hold_requests import HoldRequest, Reserved, hold_request
from zhongtai.inventory.holds import hold_baskets
from zhongtai.inventory.models import Reservation
from zhongtai.inventory.pg_hold_statement import independent_first

TTL = timedelta(minutes=15)


def _ask(reference: str, store: object, *lines: service.Line, **kw: object) -> HoldRequest:
    return hold_request(reference, store.id, list(lines), TTL, **kw)  # type: ignore[attr-defined,arg-type]


def test_a_basket_sharing_a_row_with_an_earlier_one_waits_for_the_general_path(
    stock: StockFactory,
) -> None:
    store, other = stock.location(), stock.location()
    x, y, z = stock.sku(), stock.sku(), stock.sku()
    first, later = independent_first(
        [
            _ask("1", store, line(x, 1)),
            _ask("2", other, line(x, 1)),  # another store's row
            _ask("3", store, line(y, 1), line(x, 1)),  # x again
            _ask("4", store, line(y, 1)),  # y, first taken by the waiting basket 3
            _ask("5", store, line(z, 1)),
        ]
    )
    assert (first, later) == ([0, 1, 4], [2, 3])


def test_baskets_sharing_rows_are_still_judged_in_arrival_order(
    session: Session, stock: StockFactory
) -> None:
    store, x, y = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, x, 10)
    stock.receive(store, y, 1)
    a, b, c = hold_baskets(
        session,
        [
            _ask("a", store, line(x, 1)),
            _ask("b", store, line(x, 1), line(y, 1)),  # shares x with a
            _ask("c", store, line(y, 1)),  # the last y, asked after b
        ],
    )
    assert isinstance(a, Reserved) and isinstance(b, Reserved)
    assert isinstance(c, InsufficientStock) and c.extra["sku_id"] == str(y.id)
    assert service.verify_stock(session) == []


def test_events_of_a_hold_carry_the_payloads_their_models_declare(
    session: Session, stock: StockFactory
) -> None:
    store, low, out = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, low, 10)
    stock.receive(store, out, 3)
    service.set_stock_levels(session, store.id, low.id, safety_stock=1, low_stock_level=4)
    session.commit()
    hold_baskets(session, [_ask("low", store, line(low, 5)), _ask("out", store, line(out, 3))])
    changed = {e.aggregate_id: e for e in stock.events("stock.changed", store)[-2:]}
    assert changed[str(low.id)].payload == StockChanged(
        location_id=store.id,
        sku_id=low.id,
        on_hand=10,
        reserved=5,
        safety_stock=1,
        atp=4,
        cause="reserved",
        quantity=5,
    ).model_dump(mode="json")
    [low_event] = stock.events("stock.low", store)
    assert low_event.payload == StockLow(
        location_id=store.id,
        sku_id=low.id,
        on_hand=10,
        reserved=5,
        safety_stock=1,
        atp=4,
        low_stock_level=4,
    ).model_dump(mode="json")
    [out_event] = stock.events("stock.out", store)
    assert out_event.payload == StockOut(
        location_id=store.id, sku_id=out.id, on_hand=3, reserved=3, safety_stock=0, atp=0
    ).model_dump(mode="json")
    assert (out_event.aggregate_type, out_event.aggregate_id, out_event.version) == (
        "stock",
        str(out.id),
        1,
    )
    # A changed row is announced before its crossing.
    of_out = session.scalars(
        select(OutboxEvent.type)
        .where(OutboxEvent.store_id == store.id, OutboxEvent.aggregate_id == str(out.id))
        .order_by(OutboxEvent.seq)
    ).all()
    assert of_out[-2:] == ["stock.changed", "stock.out"]


def test_reservations_and_events_get_time_ordered_ids(
    session: Session, stock: StockFactory
) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 2)
    stock.receive(store, b, 2)
    held = hold_baskets(session, [_ask("v7-a", store, line(a, 1)), _ask("v7-b", store, line(b, 1))])
    ids = [o.reservation.id for o in held if isinstance(o, Reserved)]
    events = stock.events("stock.changed", store)[-2:]
    assert [i.version for i in ids] == [7, 7]
    assert [e.id.version for e in events] == [7, 7]


def test_a_round_answers_fits_retries_shorts_and_closed_stores_each_their_own_way(
    session: Session, stock: StockFactory
) -> None:
    store, a, b, c = stock.location(), stock.sku(), stock.sku(), stock.sku()
    stock.receive(store, a, 5)
    stock.receive(store, b, 1)
    stock.receive(store, c, 5)
    [first] = hold_baskets(session, [_ask("again", store, line(c, 2))])
    session.commit()
    assert isinstance(first, Reserved)
    fits, short, retry, unknown_store = hold_baskets(
        session,
        [
            _ask("fits", store, line(a, 2)),
            _ask("short", store, line(b, 2), line(a, 1)),  # a fits, b does not: neither held
            _ask("again", store, line(c, 2)),
            hold_request("nowhere", uuid.uuid4(), [line(a, 1)], TTL),
        ],
    )
    assert isinstance(fits, Reserved) and fits.created
    assert isinstance(short, InsufficientStock) and short.extra["available"] == 1
    assert isinstance(retry, Reserved) and not retry.created
    assert retry.reservation_id == first.reservation_id == retry.reservation.id
    assert type(unknown_store).__name__ == "InvalidInput"
    assert stock.balance(store, a).reserved == 2  # type: ignore[union-attr]
    assert stock.balance(store, b).reserved == 0  # type: ignore[union-attr]
    assert stock.balance(store, c).reserved == 2  # type: ignore[union-attr]
    references = session.scalars(select(Reservation.reference).order_by(Reservation.reference))
    assert list(references) == ["again", "fits"]  # the short basket's claim was let go
    assert service.verify_stock(session) == []


def test_a_round_keeps_each_basket_within_its_channels_allocation(
    session: Session, stock: StockFactory
) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 10)
    stock.receive(store, b, 10)
    allocation.set_allocation(session, "app", store.id, share_percent=50, keep_units=2)
    within, beyond, kept = hold_baskets(
        session,
        [
            _ask("app-a", store, line(a, 5), channel="app"),  # 50% of 10 = 5: fits
            _ask("app-b", store, line(b, 6), channel="app"),  # 6 > 5: refused
            _ask("pos-b", store, line(b, 10), channel="pos"),  # no rule for the till: all of it
        ],
    )
    assert isinstance(within, Reserved) and isinstance(kept, Reserved)
    assert isinstance(beyond, InsufficientStock) and beyond.extra["available"] == 5
    assert session.scalar(select(func.count()).select_from(Reservation)) == 2


@pytest.mark.postgres_only
def test_holds_run_on_one_generic_plan_and_leave_the_transactions_planning_as_found(
    session: Session, stock: StockFactory
) -> None:
    store, x = stock.location(), stock.sku()
    stock.receive(store, x, 100)
    for n in range(8):  # prepared on its 6th run on this connection
        (held,) = hold_baskets(session, [_ask(f"generic-{n}", store, line(x, 1))])
        assert isinstance(held, Reserved)
        assert session.scalar(text("SHOW plan_cache_mode")) == "auto"
    plans = session.execute(
        text(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%fit AS MATERIALIZED%'"
        )
    ).all()
    assert [(p.generic_plans >= 2, p.custom_plans) for p in plans] == [(True, 0)]
