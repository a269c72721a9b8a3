"""HTTP endpoints of how well stores keep their promises: the orders found late (a store's,
or the chain's for HQ's customer service), and the on-time rate per store and fulfilment type
over a period, for store managers and HQ."""

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
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.fulfillment import worklists
from zhongtai.fulfillment.api import FULFIL
from zhongtai.fulfillment.on_time import OnTime, on_time, together
from zhongtai.fulfillment.worklists import LateOrder
from zhongtai.orders.kinds import FulfillmentType

router = api_router(tags=["fulfillment"])
REPORT = Depends(require(Permission.FULFILLMENT_REPORT))

#: The longest period one report covers.
MAX_PERIOD = timedelta(days=366)


class MissedPromiseOut(BaseModel):
    order_id: uuid.UUID
    order_number: str
    store_id: uuid.UUID
    fulfillment_type: str
    promised_by: datetime
    status_when_found: str = Field(
        description="Where the order stood when its promise was found missed: still in the "
        "store (booked or paid, to packed) or on its way (out_for_delivery, shipped)."
    )
    status_now: str
    detected_at: datetime

    @classmethod
    def of(cls, late: LateOrder) -> MissedPromiseOut:
        return cls(
            order_id=late.missed.order_id,
            order_number=late.number,
            store_id=late.missed.store_id,
            fulfillment_type=late.missed.fulfillment_type,
            promised_by=late.missed.promised_by,
            status_when_found=late.missed.order_status,
            status_now=late.status_now.value,
            detected_at=late.missed.detected_at,
        )


SINCE = Query(None, description="Found from this instant (inclusive), with its UTC offset.")


@router.get("/fulfillment/stores/{store_id}/missed-promises", response_model=Page[MissedPromiseOut])
def store_missed_promises(
    store_id: uuid.UUID,
    since: Moment | None = SINCE,
    page: PageParams = Depends(page_params),
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
) -> Page[MissedPromiseOut]:
    """The store's orders found past the moment promised to the customer (deliveries and
    parcels not at her door, pickups and try-ons not ready), in the order they were found
    (`serve`'s promise clock), with where each stands now: its staff's list to call ahead."""
    principal.ensure_store(store_id)
    rows, cursor = worklists.missed_promises(session, [store_id], page, since=since)
    return Page(items=[MissedPromiseOut.of(x) for x in rows], next_cursor=cursor)


@router.get("/fulfillment/missed-promises", response_model=Page[MissedPromiseOut])
def missed_promises(
    since: Moment | None = SINCE,
    store_id: list[uuid.UUID] | None = Query(None, description="These stores (repeatable)."),
    page: PageParams = Depends(page_params),
    principal: Principal = REPORT,
    session: Session = Depends(db_session),
) -> Page[MissedPromiseOut]:
    """Every store's missed promises (a store manager: her stores'), in the order they were
    found: HQ's customer service calls ahead."""
    stores = principal.stores_asked(store_id)
    rows, cursor = worklists.missed_promises(session, stores, page, since=since)
    return Page(items=[MissedPromiseOut.of(x) for x in rows], next_cursor=cursor)


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
    principal: Principal = REPORT,
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
