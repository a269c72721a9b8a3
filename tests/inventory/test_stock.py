"""Receipts, adjustments, write-offs and POS sales: ledger and balance move together."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.inventory.conftest import StockFactory, line
from zhongtai.core import context
from zhongtai.core.errors import InvalidInput
from zhongtai.inventory import service
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.models import MovementKind, StockDiscrepancy, StockMovement


def _movements(session: Session, sku_id: object) -> list[StockMovement]:
    return list(
        session.scalars(
            select(StockMovement).where(StockMovement.sku_id == sku_id).order_by(StockMovement.id)
        )
    )


def test_a_receipt_raises_on_hand_and_writes_one_ledger_line_with_its_actor(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    token = context.actor.set("staff:receiver")
    try:
        service.receive_stock(
            session,
            store.id,
            [service.ReceiptLine(sku.id, 24, lot="L-7")],
            reference_type="purchase_order",
            reference_id="PO-1",
        )
    finally:
        context.actor.reset(token)
    balance = stock.balance(store, sku)
    assert balance is not None and balance.on_hand == 24
    [movement] = _movements(session, sku.id)
    assert (movement.kind, movement.quantity, movement.on_hand_after) == (
        MovementKind.RECEIPT,
        24,
        24,
    )
    assert (movement.reference_id, movement.lot, movement.actor) == (
        "PO-1",
        "L-7",
        "staff:receiver",
    )
    assert service.verify_stock(session) == []


def test_fresh_goods_are_received_with_their_expiry_date(
    session: Session, stock: StockFactory
) -> None:
    store, milk = stock.location(), stock.sku(fresh=True)
    with pytest.raises(InvalidInput) as missing:
        service.receive_stock(session, store.id, [service.ReceiptLine(milk.id, 10)])
    assert missing.value.errors == [
        {"field": "lines.0.expires_on", "message": "is required for fresh goods"}
    ]
    service.receive_stock(
        session,
        store.id,
        [service.ReceiptLine(milk.id, 10, lot="M1", expires_on=date(2026, 12, 1))],
    )
    assert _movements(session, milk.id)[0].expires_on == date(2026, 12, 1)


def test_a_receipt_for_an_unknown_sku_or_location_moves_nothing(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    with pytest.raises(InvalidInput) as unknown_sku:
        service.receive_stock(
            session,
            store.id,
            [service.ReceiptLine(sku.id, 1), service.ReceiptLine(stock.factory.new_id(), 1)],
        )
    assert unknown_sku.value.errors[0]["field"] == "lines.1.sku_id"
    with pytest.raises(InvalidInput) as unknown_location:
        service.receive_stock(session, stock.factory.new_id(), [service.ReceiptLine(sku.id, 1)])
    assert unknown_location.value.errors[0]["field"] == "location_id"
    assert stock.balance(store, sku) is None
    assert _movements(session, sku.id) == []


def test_an_adjustment_carries_reason_and_approver_and_cannot_take_on_hand_below_zero(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    posted = service.adjust_stock(
        session, store.id, sku.id, -2, reason="broken in the back room", approver="staff:mgr"
    )
    assert posted.figures.on_hand == 3
    with pytest.raises(InsufficientStock) as short:
        service.adjust_stock(session, store.id, sku.id, -4, reason="count", approver="staff:mgr")
    assert short.value.extra["available"] == 3
    with pytest.raises(InvalidInput):
        service.adjust_stock(session, store.id, sku.id, 1, reason="  ", approver="staff:mgr")
    balance = stock.balance(store, sku)
    assert balance is not None and balance.on_hand == 3
    last = _movements(session, sku.id)[-1]
    assert (last.reason, last.approver, last.quantity) == (
        "broken in the back room",
        "staff:mgr",
        -2,
    )
    assert service.verify_stock(session) == []


def test_a_write_off_takes_stock_out_and_must_be_negative(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 5)
    with pytest.raises(InvalidInput) as positive:
        service.adjust_stock(
            session, store.id, sku.id, 2, reason="x", approver=None, kind=MovementKind.WRITE_OFF
        )
    assert positive.value.errors[0]["field"] == "quantity"
    posted = service.adjust_stock(
        session, store.id, sku.id, -5, reason="expired", approver=None, kind=MovementKind.WRITE_OFF
    )
    assert posted.kind is MovementKind.WRITE_OFF and posted.figures.on_hand == 0


def test_a_pos_sale_drops_on_hand_at_once(session: Session, stock: StockFactory) -> None:
    store, a, b = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, a, 10)
    stock.receive(store, b, 10)
    service.record_pos_sale(session, store.id, [line(a, 3), line(b, 1)], reference="R-1")
    assert [stock.balance(store, s).on_hand for s in (a, b)] == [7, 9]  # type: ignore[union-attr]
    assert session.scalar(select(func.count()).select_from(StockDiscrepancy)) == 0


def test_a_pos_sale_beyond_on_hand_is_recorded_and_flagged_for_the_manager(
    session: Session, stock: StockFactory
) -> None:
    store, sku, never_received = stock.location(), stock.sku(), stock.sku()
    stock.receive(store, sku, 1)
    posted = service.record_pos_sale(
        session, store.id, [line(sku, 3), line(never_received, 1)], reference="R-2"
    )
    assert sorted(p.figures.on_hand for p in posted) == [-2, -1]
    assert all(p.discrepancy_id is not None for p in posted)
    listed, _ = service.list_discrepancies(session, _page(), location_id=store.id)
    assert {(d.sku_id, d.on_hand_after) for d in listed} == {(sku.id, -2), (never_received.id, -1)}
    flagged = stock.events("stock.discrepancy_detected", store)
    assert {e.payload["sku_id"] for e in flagged} == {str(sku.id), str(never_received.id)}
    assert service.verify_stock(session) == []


def test_every_change_announces_stock_changed_and_crossings_announce_low_and_out(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    service.set_stock_levels(session, store.id, sku.id, safety_stock=2, low_stock_level=3)
    service.record_pos_sale(session, store.id, [line(sku, 4)], reference="R-3")  # ATP 4
    service.record_pos_sale(session, store.id, [line(sku, 1)], reference="R-4")  # ATP 3: low
    service.record_pos_sale(session, store.id, [line(sku, 1)], reference="R-5")  # ATP 2
    service.record_pos_sale(session, store.id, [line(sku, 2)], reference="R-6")  # ATP 0: out
    changed = stock.events("stock.changed", store)
    assert [e.payload["cause"] for e in changed] == ["receipt", "settings"] + ["sale"] * 4
    assert changed[-1].payload["atp"] == 0
    assert [e.payload["atp"] for e in stock.events("stock.low", store)] == [3]
    assert [e.payload["on_hand"] for e in stock.events("stock.out", store)] == [2]


def test_safety_stock_is_kept_back_from_atp(session: Session, stock: StockFactory) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    figures = service.set_stock_levels(session, store.id, sku.id, safety_stock=4, low_stock_level=0)
    assert (figures.on_hand, figures.atp) == (10, 6)
    with pytest.raises(InvalidInput):
        service.set_stock_levels(session, store.id, sku.id, safety_stock=-1, low_stock_level=0)


def _page() -> service.PageParams:
    return service.PageParams()
