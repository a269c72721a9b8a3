"""HTTP endpoint of returns: take goods back at any store, against the original order, and
refund to its tenders.

Apart from the order routes because a return is its own use case, under its own permission
(``orders:return``): the goods may come back at a store other than the one that sold them.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.fulfillment import courier
from zhongtai.orders import returns
from zhongtai.orders.api_common import providers_of
from zhongtai.orders.models import Refund
from zhongtai.orders.return_schemas import ReturnIn, ReturnOut
from zhongtai.orders.schemas import RefundOut

router = api_router(tags=["orders"])


@router.post(
    "/orders/{order_id}/returns",
    response_model=ReturnOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "This return reference was taken before: the same return."}},
)
def return_goods(
    order_id: uuid.UUID,
    body: ReturnIn,
    request: Request,
    response: Response,
    principal: Principal = Depends(require(Permission.ORDERS_RETURN)),
    session: Session = Depends(db_session),
) -> Any:
    """Take goods back at any store: resellable ones return to that store's stock, damaged
    ones are written off, and the refund goes to the original tenders. A parcel the rider
    could not deliver comes back the same way."""
    done = returns.return_goods(
        session,
        order_id,
        reference=body.reference,
        store_id=body.store_id,
        lines=[
            returns.ReturnLine(x.line_id, x.quantity, x.condition, x.substitute) for x in body.lines
        ],
        reason=body.reason,
        caller=principal,
        providers=providers_of(request).payments,
        undelivered=courier.delivery_failed(session, order_id),
    )
    if not done.created:
        response.status_code = status.HTTP_200_OK
    out = ReturnOut.model_validate(done.order_return)
    out.refunds = [
        RefundOut.model_validate(r)
        for r in session.scalars(
            select(Refund).where(Refund.return_id == done.order_return.id).order_by(Refund.id)
        )
    ]
    return out
