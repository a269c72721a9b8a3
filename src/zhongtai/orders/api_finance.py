"""HTTP endpoint of finance: the daily settlement as CSV."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from fastapi import Depends, Query
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import InvalidInput
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.orders.settlement import settlement_csv, settlement_for_day

router = api_router(tags=["finance"])


@router.get(
    "/finance/settlement",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def daily_settlement(
    day: date = Query(description="The business day (it starts at 04:00 store time)."),
    store_id: list[uuid.UUID] | None = Query(None, description="These stores (repeatable)."),
    as_of: datetime | None = Query(
        None,
        description="Count only what was recorded by then: the same report of a closed day "
        "however often it is drawn.",
    ),
    principal: Principal = Depends(require(Permission.FINANCE_READ)),
    session: Session = Depends(db_session),
) -> PlainTextResponse:
    """Money taken and given back per business day, store, sales channel and tender, in fen:
    `business_date,store_code,channel,tender,payments,taken_fen,refunds,refunded_fen,net_fen`."""
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidInput.field("as_of", "include a UTC offset")
    rows = settlement_for_day(session, day, store_ids=principal.stores_asked(store_id), as_of=as_of)
    return PlainTextResponse(
        settlement_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="settlement-{day}.csv"'},
    )
