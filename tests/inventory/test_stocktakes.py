"""Stocktakes: counted zone by zone while the till keeps selling; variances posted once."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.inventory.conftest import StockFactory, line
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.inventory import service, stocktakes
from zhongtai.inventory.models import MovementKind, StocktakeStatus


def test_variances_are_posted_against_the_count_even_when_sales_went_on(
    session: Session, stock: StockFactory
) -> None:
    store, a, b, c = stock.location(), stock.sku(), stock.sku(), stock.sku()
    stock.receive(store, a, 20)
    stock.receive(store, b, 10)
    stock.receive(store, c, 5)
    take = stocktakes.open_stocktake(session, store.id)
    stocktakes.record_count(session, take.id, "shelf", [line(a, 12), line(b, 10)])
    service.record_pos_sale(session, store.id, [line(a, 3)], reference="during-count")
    stocktakes.record_count(session, take.id, "back room", [line(a, 6), line(c, 5)])
    posted = stocktakes.approve_stocktake(session, take.id)
    # a: 18 counted against 20 on hand at its first sheet: -2; b and c agree: nothing posted.
    assert [(p.figures.sku_id, p.quantity, p.kind) for p in posted] == [
        (a.id, -2, MovementKind.STOCKTAKE_VARIANCE)
    ]
    balance = stock.balance(store, a)
    assert balance is not None and balance.on_hand == 15  # 20 - 3 sold - 2 missing
    assert service.verify_stock(session) == []
    with pytest.raises(Conflict):
        stocktakes.approve_stocktake(session, take.id)
    with pytest.raises(Conflict):
        stocktakes.record_count(session, take.id, "shelf", [line(a, 1)])


def test_a_recount_replaces_the_zone_figure_and_bad_counts_are_refused(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 8)
    take = stocktakes.open_stocktake(session, store.id)
    stocktakes.record_count(session, take.id, "shelf", [line(sku, 3)])
    stocktakes.record_count(session, take.id, "shelf", [line(sku, 9)])
    with pytest.raises(InvalidInput) as negative:
        stocktakes.record_count(session, take.id, "shelf", [line(sku, -1)])
    assert negative.value.errors is not None
    assert negative.value.errors[0]["field"] == "lines.0.quantity"
    [posted] = stocktakes.approve_stocktake(session, take.id)
    assert posted.quantity == 1 and posted.figures.on_hand == 9


def test_a_cancelled_stocktake_posts_nothing(session: Session, stock: StockFactory) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 8)
    take = stocktakes.open_stocktake(session, store.id)
    stocktakes.record_count(session, take.id, "shelf", [line(sku, 1)])
    assert stocktakes.cancel_stocktake(session, take.id).status is StocktakeStatus.CANCELLED
    with pytest.raises(Conflict):
        stocktakes.approve_stocktake(session, take.id)
    balance = stock.balance(store, sku)
    assert balance is not None and balance.on_hand == 8


def test_a_cancel_sent_again_answers_the_cancellation_and_one_after_approval_is_409(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 8)
    dropped = stocktakes.open_stocktake(session, store.id)
    stocktakes.cancel_stocktake(session, dropped.id)
    assert stocktakes.cancel_stocktake(session, dropped.id).status is StocktakeStatus.CANCELLED
    with pytest.raises(Conflict) as cancelled:
        stocktakes.approve_stocktake(session, dropped.id)
    assert cancelled.value.extra["status_now"] == "cancelled"
    take = stocktakes.open_stocktake(session, store.id)
    stocktakes.record_count(session, take.id, "shelf", [line(sku, 6)])
    stocktakes.approve_stocktake(session, take.id)
    with pytest.raises(Conflict) as approved:
        stocktakes.cancel_stocktake(session, take.id)
    assert approved.value.extra["status_now"] == "approved"
    assert "variances are posted" in approved.value.detail
    balance = stock.balance(store, sku)
    assert balance is not None and balance.on_hand == 6
