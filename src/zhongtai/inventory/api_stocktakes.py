"""HTTP endpoints of stocktakes: open, count zone by zone (selling goes on), approve, cancel."""

from __future__ import annotations

import uuid

from fastapi import Depends, Path, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.inventory import stocktakes
from zhongtai.inventory.rules import Line
from zhongtai.inventory.schemas import (
    CountSheetIn,
    PostedList,
    PostedOut,
    StocktakeIn,
    StocktakeOut,
)

router = api_router(tags=["inventory: stocktakes"])
ADJUST = Depends(require(Permission.INVENTORY_ADJUST))


def _in_scope(session: Session, principal: Principal, stocktake_id: uuid.UUID) -> None:
    principal.ensure_store(stocktakes.get_stocktake(session, stocktake_id).location_id)


@router.post(
    "/inventory/stocktakes", response_model=StocktakeOut, status_code=status.HTTP_201_CREATED
)
def open_stocktake(
    body: StocktakeIn, principal: Principal = ADJUST, session: Session = Depends(db_session)
) -> StocktakeOut:
    """Start counting a location; it keeps selling meanwhile."""
    principal.ensure_store(body.location_id)
    return StocktakeOut.model_validate(
        stocktakes.open_stocktake(session, body.location_id, note=body.note)
    )


@router.get("/inventory/stocktakes/{stocktake_id}", response_model=StocktakeOut)
def get_stocktake(
    stocktake_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.INVENTORY_READ)),
    session: Session = Depends(db_session),
) -> StocktakeOut:
    stocktake = stocktakes.get_stocktake(session, stocktake_id)
    principal.ensure_store(stocktake.location_id)
    return StocktakeOut.model_validate(stocktake)


@router.put("/inventory/stocktakes/{stocktake_id}/zones/{zone}", response_model=StocktakeOut)
def record_count(
    stocktake_id: uuid.UUID,
    body: CountSheetIn,
    zone: str = Path(min_length=1, max_length=32),
    principal: Principal = Depends(require(Permission.INVENTORY_RECEIVE)),
    session: Session = Depends(db_session),
) -> StocktakeOut:
    """One zone's count sheet (a recount replaces it)."""
    _in_scope(session, principal, stocktake_id)
    counts = [Line(x.sku_id, x.quantity) for x in body.lines]
    return StocktakeOut.model_validate(stocktakes.record_count(session, stocktake_id, zone, counts))


@router.post("/inventory/stocktakes/{stocktake_id}/approve", response_model=PostedList)
def approve(
    stocktake_id: uuid.UUID, principal: Principal = ADJUST, session: Session = Depends(db_session)
) -> PostedList:
    """Post the variances as one batch; the approver is recorded on each movement."""
    _in_scope(session, principal, stocktake_id)
    posted = stocktakes.approve_stocktake(session, stocktake_id)
    return PostedList(movements=[PostedOut.of(p) for p in posted])


@router.post("/inventory/stocktakes/{stocktake_id}/cancel", response_model=StocktakeOut)
def cancel(
    stocktake_id: uuid.UUID, principal: Principal = ADJUST, session: Session = Depends(db_session)
) -> StocktakeOut:
    _in_scope(session, principal, stocktake_id)
    return StocktakeOut.model_validate(stocktakes.cancel_stocktake(session, stocktake_id))
