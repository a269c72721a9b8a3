"""Reservations: all-or-nothing baskets, idempotent by reference, confirm, release, expire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.inventory.conftest import StockFactory, line
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.inventory import service
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.models import MovementKind, ReservationStatus, StockMovement

TTL = timedelta(minutes=15)


def _figures(stock: StockFactory, store: object, sku: object) -> tuple[int, int]:
    b = stock.balance(store, sku)  # type: ignore[arg-type]
    assert b is not None
    return b.on_hand, b.reserved


def test_a_basket_holds_every_line_and_lowers_atp(session: Session, stock: StockFactory) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 5)
    stock.receive(store, b, 5)
    held = service.reserve(session, "checkout-1", store.id, [line(a, 2), line(b, 5)], TTL)
    assert held.created and held.reservation.status is ReservationStatus.ACTIVE
    assert {(x.sku_id, x.quantity) for x in held.reservation.lines} == {(a.id, 2), (b.id, 5)}
    assert _figures(stock, store, a) == (5, 2)
    assert _figures(stock, store, b) == (5, 5)
    assert [e.payload["atp"] for e in stock.events("stock.out", store)] == [0]
    assert service.verify_stock(session) == []


def test_a_basket_with_one_short_line_holds_nothing_and_names_the_sku_and_what_is_left(
    session: Session, stock: StockFactory
) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 5)
    stock.receive(store, b, 2)
    with pytest.raises(InsufficientStock) as short:
        service.reserve(session, "checkout-2", store.id, [line(a, 1), line(b, 3)], TTL)
    assert short.value.extra == {
        "location_id": str(store.id),
        "sku_id": str(b.id),
        "requested": 3,
        "available": 2,
    }
    assert _figures(stock, store, a) == (5, 0)
    assert _figures(stock, store, b) == (2, 0)
    retry = service.reserve(session, "checkout-2", store.id, [line(a, 1), line(b, 2)], TTL)
    assert retry.created  # the failed attempt bound nothing to the reference


def test_safety_stock_cannot_be_reserved(session: Session, stock: StockFactory) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    service.set_stock_levels(session, store.id, sku.id, safety_stock=2, low_stock_level=0)
    with pytest.raises(InsufficientStock) as short:
        service.reserve(session, "c-safety", store.id, [line(sku, 4)], TTL)
    assert short.value.extra["available"] == 3


def test_a_sku_never_stocked_here_has_nothing_available(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    with pytest.raises(InsufficientStock) as short:
        service.reserve(session, "c-none", store.id, [line(sku, 1)], TTL)
    assert short.value.extra["available"] == 0


def test_bad_baskets_answer_422_naming_the_field(session: Session, stock: StockFactory) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    cases = {
        "lines.1.sku_id": [line(sku, 1), line(sku, 2)],
        "lines.0.quantity": [line(sku, -1)],
        "lines": [],
    }
    for field, lines in cases.items():
        with pytest.raises(InvalidInput) as bad:
            service.reserve(session, f"bad-{field}", store.id, lines, TTL)
        assert bad.value.errors is not None and bad.value.errors[0]["field"] == field
    with pytest.raises(InvalidInput) as unknown:
        service.reserve(
            session, "bad-sku", store.id, [line(sku, 1), line(stock.factory.new_id(), 1)], TTL
        )
    assert unknown.value.errors == [
        {"field": "lines.1.sku_id", "message": unknown.value.errors[0]["message"]}
    ]
    with pytest.raises(InvalidInput) as ttl:
        service.reserve(session, "bad-ttl", store.id, [line(sku, 1)], timedelta(seconds=1))
    assert ttl.value.errors is not None and ttl.value.errors[0]["field"] == "ttl_seconds"
    assert _figures(stock, store, sku) == (5, 0)


def test_retrying_a_reference_answers_the_same_reservation_and_holds_once(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    first = service.reserve(session, "order-9", store.id, [line(sku, 2)], TTL)
    again = service.reserve(session, "order-9", store.id, [line(sku, 2)], TTL)
    assert not again.created and again.reservation.id == first.reservation.id
    assert _figures(stock, store, sku) == (5, 2)
    with pytest.raises(Conflict) as other_basket:
        service.reserve(session, "order-9", store.id, [line(sku, 3)], TTL)
    assert "order-9" in other_basket.value.detail


def test_confirming_ships_the_held_stock_once(session: Session, stock: StockFactory) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    held = service.reserve(session, "order-10", store.id, [line(sku, 2)], TTL).reservation
    confirmed = service.confirm_reservation(session, held.id)
    assert confirmed.status is ReservationStatus.CONFIRMED
    assert _figures(stock, store, sku) == (3, 0)
    assert service.confirm_reservation(session, held.id).status is ReservationStatus.CONFIRMED
    assert _figures(stock, store, sku) == (3, 0)
    shipments = session.scalars(
        select(StockMovement).where(StockMovement.kind == MovementKind.SHIPMENT)
    ).all()
    assert [(m.quantity, m.reference_id) for m in shipments if m.sku_id == sku.id] == [
        (-2, "order-10")
    ]
    with pytest.raises(Conflict):
        service.release_reservation(session, held.id)
    assert service.verify_stock(session) == []


def test_confirm_is_refused_when_a_pos_sale_took_the_held_goods(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 2)
    held = service.reserve(session, "order-11", store.id, [line(sku, 2)], TTL).reservation
    service.record_pos_sale(session, store.id, [line(sku, 1)], reference="R-x")
    with pytest.raises(InsufficientStock):
        service.confirm_reservation(session, held.id)
    assert service.get_reservation(session, held.id).status is ReservationStatus.ACTIVE
    assert _figures(stock, store, sku) == (1, 2)
    assert service.verify_stock(session) == []


def test_releasing_frees_the_stock_and_a_second_release_changes_nothing(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    held = service.reserve(session, "c-rel", store.id, [line(sku, 4)], TTL).reservation
    assert service.release_reservation(session, held.id).status is ReservationStatus.RELEASED
    assert service.release_reservation(session, held.id).status is ReservationStatus.RELEASED
    assert _figures(stock, store, sku) == (5, 0)
    with pytest.raises(Conflict):
        service.confirm_reservation(session, held.id)
    assert service.verify_stock(session) == []


def test_the_sweeper_expires_overdue_holds_only_and_is_safe_to_rerun(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    now = utcnow()
    old = service.reserve(session, "c-old", store.id, [line(sku, 3)], TTL, now=now - TTL * 2)
    fresh = service.reserve(session, "c-new", store.id, [line(sku, 2)], TTL, now=now)
    assert service.expire_reservations(session, now) == 1
    assert service.expire_reservations(session, now) == 0
    assert service.get_reservation(session, old.reservation.id).status is ReservationStatus.EXPIRED
    assert service.get_reservation(session, fresh.reservation.id).status is ReservationStatus.ACTIVE
    assert _figures(stock, store, sku) == (10, 2)
    assert (
        service.release_reservation(session, old.reservation.id).status is ReservationStatus.EXPIRED
    )
    with pytest.raises(Conflict):
        service.confirm_reservation(session, old.reservation.id)
    assert service.verify_stock(session) == []


def test_the_sweeper_releases_many_baskets_a_batch_per_call(
    session: Session, stock: StockFactory
) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 50)
    stock.receive(store, b, 50)
    past = utcnow() - TTL * 2
    for i in range(7):
        service.reserve(session, f"c-batch-{i}", store.id, [line(a, 1), line(b, 2)], TTL, now=past)
    assert [service.expire_reservations(session, batch=3) for _ in range(4)] == [3, 3, 1, 0]
    assert _figures(stock, store, a) == (50, 0)
    assert _figures(stock, store, b) == (50, 0)
    assert service.verify_stock(session) == []
