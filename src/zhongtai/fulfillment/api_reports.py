"""HTTP endpoint of how well stores keep their promises: the on-time rate per store and
fulfilment type over a period, for store managers and HQ."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import InvalidInput
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.moments import Moment
from zhongtai.fulfillment.on_time import OnTime, on_time, together
from zhongtai.orders.kinds import FulfillmentType

router = api_router(tags=["fulfillment"])

#: The longest period one report covers.
MAX_PERIOD = timedelta(days=366)


class OnTimeOut(BaseModel):
    store_id: uuid.UUID | None = Field(description="null: the stores together.")
    fulfillment_type: FulfillmentType | None = Field(description="null: every type together.")
    promised: int = Field(description="Promises that fell due in the period.")
    kept: int = Field(
        description="Deliveries and parcels at the customer's door by the promise, pickups and "
        "try-ons ready to collect by then."
    )
    late: int
    on_time_rate: float | None = Field(description="kept / promised; null when none fell due.")

    @classmethod
    def of(cls, row: OnTime) -> OnTimeOut:
        return cls(
            store_id=row.store_id,
            fulfillment_type=row.fulfillment_type,
            promised=row.promised,
            kept=row.kept,
            late=row.late,
            on_time_rate=row.rate,
        )


class OnTimeReportOut(BaseModel):
    since: datetime
    until: datetime
    rows: list[OnTimeOut] = Field(description="Per store and fulfilment type.")
    total: OnTimeOut


@router.get("/fulfillment/on-time", response_model=OnTimeReportOut)
def on_time_report(
    since: Moment = Query(description="Promises due from this instant (inclusive)."),
    until: Moment = Query(description="Promises due before this instant."),
    store_id: list[uuid.UUID] | None = Query(None, description="These stores (repeatable)."),
    principal: Principal = Depends(require(Permission.FULFILLMENT_REPORT)),
    session: Session = Depends(db_session),
) -> OnTimeReportOut:
    """Of the promises that fell due in the period (cancelled and unpaid orders left out), how
    many each store kept, per fulfilment type: the on-time rate. A store manager sees her
    stores."""
    if until <= since:
        raise InvalidInput.field("query.until", "must come after since")
    if until - since > MAX_PERIOD:
        raise InvalidInput.field("query.until", f"at most {MAX_PERIOD.days} days after since")
    rows = on_time(session, since=since, until=until, store_ids=principal.stores_asked(store_id))
    return OnTimeReportOut(
        since=since,
        until=until,
        rows=[OnTimeOut.of(row) for row in rows],
        total=OnTimeOut.of(together(rows)),
    )
