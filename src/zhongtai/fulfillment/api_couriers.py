"""HTTP endpoints of riders: the store books one for a packed delivery order, or calls one off
to book again, and courier platforms report the rider's progress."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import Depends, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router, request_body
from zhongtai.core.settings import Settings
from zhongtai.fulfillment import courier, courier_callbacks
from zhongtai.fulfillment.api import FULFIL, at_store
from zhongtai.fulfillment.models import CourierDispatch
from zhongtai.orders.api_common import callback_url, providers_of

router = api_router(tags=["fulfillment"])


class DispatchOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    courier_ref: str | None
    status: str
    estimated_delivery_at: datetime | None


class DispatchIn(BaseModel):
    provider: str = Field(default="simulated", max_length=32)


@router.post(
    "/fulfillment/orders/{order_id}/dispatch",
    response_model=DispatchOut,
    status_code=status.HTTP_201_CREATED,
)
def dispatch(
    order_id: uuid.UUID,
    body: DispatchIn,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> DispatchOut:
    """Book a rider for a packed delivery order; the rider's progress arrives as signed
    callbacks (collected: out for delivery; delivered: completed)."""
    at_store(session, principal, order_id)
    booked = courier.dispatch_courier(
        session,
        order_id,
        courier=providers_of(request).courier(body.provider),
        callback_url=callback_url(request, settings, f"/couriers/callbacks/{body.provider}"),
    )
    return _out(booked)


@router.post("/fulfillment/orders/{order_id}/dispatch/call-off", response_model=DispatchOut)
def call_off(
    order_id: uuid.UUID,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
) -> DispatchOut:
    """Call off the rider booked for a packed delivery order, which stays on sale: the store
    then books again, perhaps with another platform (`provider`). 409 when the rider has the
    parcel already, or no rider is booked. Answers the dispatch called off."""
    at_store(session, principal, order_id)
    return _out(courier.call_off_for_another(session, order_id, providers_of(request)))


def _out(dispatch: CourierDispatch) -> DispatchOut:
    return DispatchOut(
        id=dispatch.id,
        order_id=dispatch.order_id,
        provider=dispatch.provider,
        courier_ref=dispatch.courier_ref,
        status=dispatch.status.value,
        estimated_delivery_at=dispatch.estimated_delivery_at,
    )


@router.post("/couriers/callbacks/{provider}", status_code=status.HTTP_204_NO_CONTENT)
def courier_callback(
    provider: str,
    request: Request,
    body: bytes = Depends(request_body),
    session: Session = Depends(db_session),
) -> Response:
    """Where courier platforms report the rider's progress (signed; stale ones are ignored)."""
    couriers = providers_of(request)
    courier_callbacks.apply_courier_callback(
        session, couriers.courier(provider), dict(request.headers), body, couriers=couriers
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
