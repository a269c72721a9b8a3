"""The demo chain opens with stock that verifies, fresh goods in lots with expiry dates."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.demo import build_chain, load_demo_chain
from zhongtai.inventory import service
from zhongtai.inventory.models import StockBalance, StockMovement


def test_the_demo_chain_has_stock_in_every_location_and_the_ledger_verifies(
    session: Session,
) -> None:
    chain = build_chain(7, stores=3, skus=60, staff_per_store=0)
    load_demo_chain(session, chain)
    ids = [loc["id"] for loc in chain.locations]
    stocked = session.scalar(
        select(func.count(func.distinct(StockBalance.location_id))).where(
            StockBalance.location_id.in_(ids), StockBalance.on_hand > 0
        )
    )
    assert stocked == len(ids)
    fresh = session.scalars(
        select(StockMovement).where(
            StockMovement.location_id.in_(ids), StockMovement.expires_on.is_not(None)
        )
    ).all()
    assert fresh and all(m.lot for m in fresh)
    assert service.verify_stock(session) == []
