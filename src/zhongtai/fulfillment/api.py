"""HTTP endpoints of the store's work on orders: queue, accept, pick, pack, ready, pickup by
code, shipping (riders: :mod:`zhongtai.fulfillment.api_couriers`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import (
    api_router,
    committing_refusals,
    idempotent_at_commit,
)
from zhongtai.core.http.security import client_ip, require
from zhongtai.core.settings import Settings
from zhongtai.fulfillment import pickup, tasks, worklists
from zhongtai.fulfillment.picking import LinePick, SubstituteAsked
from zhongtai.orders.api_common import customers, providers_of
from zhongtai.orders.lifecycle import get_order
from zhongtai.orders.schemas import OrderOut

router = api_router(tags=["fulfillment"])
FULFIL = Depends(require(Permission.ORDERS_FULFIL))


def at_store(session: Session, principal: Principal, order_id: uuid.UUID) -> None:
    """Only the fulfilling store's staff work on an order (and book or call off its riders)."""
    principal.ensure_store(get_order(session, order_id).store_id)


class QueuedServiceOut(BaseModel):
    service: str = Field(examples=["fish_cleaning"])
    prep_seconds: int = Field(
        description="What the service takes by the store's fulfilment profile (its defaults "
        "where the profile says nothing): the time the delivery promise counted for it."
    )


class QueueItemOut(BaseModel):
    order: OrderOut
    task_status: str | None
    due_at: datetime | None
    sla_breached: bool
    promise_missed: bool = Field(
        description="The moment promised to the customer (`order.promised_by`: her doorstep, or "
        "a pickup's ready time) passed before the order reached her or was ready: see "
        "GET /fulfillment/stores/{store_id}/missed-promises."
    )
    services: list[QueuedServiceOut] = Field(
        description="The services the order asks of this store, to be done before packing; "
        "its lines are at GET /fulfillment/orders/{order_id}/services."
    )


@router.get("/fulfillment/stores/{store_id}/queue", response_model=list[QueueItemOut])
def store_queue(
    store_id: uuid.UUID, principal: Principal = FULFIL, session: Session = Depends(db_session)
) -> list[QueueItemOut]:
    """The store's open online orders, most urgent first, with their SLA clocks and the
    services (fish cleaning, alterations) each asks of the store."""
    principal.ensure_store(store_id)
    return [
        QueueItemOut(
            order=OrderOut.model_validate(x.order),
            task_status=x.task.status.value if x.task else None,
            due_at=x.task.due_at if x.task else None,
            sla_breached=bool(x.task and x.task.sla_breached_at),
            promise_missed=x.promise_missed,
            services=[
                QueuedServiceOut(service=job.service, prep_seconds=job.prep_seconds)
                for job in x.services
            ],
        )
        for x in worklists.store_queue(session, store_id)
    ]


@router.post("/fulfillment/orders/{order_id}/accept", response_model=OrderOut)
def accept(
    order_id: uuid.UUID,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
) -> Any:
    """Take the order into the store's queue; its SLA clock starts."""
    at_store(session, principal, order_id)
    return customers(request, tasks.accept_order(session, order_id))


@router.post("/fulfillment/orders/{order_id}/start-picking", response_model=OrderOut)
def start_picking(
    order_id: uuid.UUID,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
) -> Any:
    at_store(session, principal, order_id)
    return customers(request, tasks.start_picking(session, order_id))


class PickLineOut(BaseModel):
    line_id: uuid.UUID
    sku_id: uuid.UUID
    sku_code: str
    name: str
    quantity: int


class PickGroupOut(BaseModel):
    zone: str
    category_code: str
    category_name: str
    lines: list[PickLineOut]


@router.get("/fulfillment/orders/{order_id}/pick-list", response_model=list[PickGroupOut])
def pick_list(
    order_id: uuid.UUID, principal: Principal = FULFIL, session: Session = Depends(db_session)
) -> list[PickGroupOut]:
    """The goods grouped by category, so the picker walks each aisle once. Services the order
    asks for (fish cleaning, alterations) are not picked: the store's service counter reads
    them at ``GET /fulfillment/orders/{order_id}/services``."""
    at_store(session, principal, order_id)
    return [
        PickGroupOut(
            zone=g.zone,
            category_code=g.category_code,
            category_name=g.category_name,
            lines=[
                PickLineOut(
                    line_id=x.line_id,
                    sku_id=x.sku_id,
                    sku_code=x.sku_code,
                    name=x.name,
                    quantity=x.quantity,
                )
                for x in g.lines
            ],
        )
        for g in worklists.picking_list(session, order_id)
    ]


class ServiceLineOut(BaseModel):
    line_id: uuid.UUID
    service: str = Field(examples=["fish_cleaning"])
    quantity: int
    prep_seconds: int = Field(
        description="What the service takes by the store's fulfilment profile (its defaults "
        "where the profile says nothing): the time the delivery promise counted for it."
    )


@router.get("/fulfillment/orders/{order_id}/services", response_model=list[ServiceLineOut])
def service_counter(
    order_id: uuid.UUID, principal: Principal = FULFIL, session: Session = Depends(db_session)
) -> list[ServiceLineOut]:
    """The order's service lines (fish cleaning, alterations) for the store's service counter,
    each with its preparation time: work to finish before the order is packed. An order of
    goods only answers an empty list."""
    at_store(session, principal, order_id)
    return [
        ServiceLineOut(
            line_id=job.line_id,
            service=job.service,
            quantity=job.quantity,
            prep_seconds=job.prep_seconds,
        )
        for job in worklists.service_work(session, order_id)
    ]


class SubstituteIn(BaseModel):
    """A similar SKU for missing units, one unit for one unit. It is charged at the catalog's
    price for the order's store and channel, never above what the original units cost."""

    sku_id: uuid.UUID
    quantity: int = Field(gt=0)


class LinePickIn(BaseModel):
    line_id: uuid.UUID
    picked: int = Field(ge=0, description="Units (grams) found; less than ordered is short.")
    substitute: SubstituteIn | None = None


class PackIn(BaseModel):
    picks: list[LinePickIn] = Field(
        default_factory=list, description="Lines not named were picked in full."
    )
    packages: int = Field(default=1, ge=1, le=100, description="Bags or boxes.")


@router.post("/fulfillment/orders/{order_id}/pack", response_model=OrderOut)
def pack(
    order_id: uuid.UUID,
    body: PackIn,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
) -> Any:
    """Close the pick and pack. Short picks are refunded at once; a similar substitute goes
    in only when the customer allowed it, never charged above the original."""
    at_store(session, principal, order_id)
    packed = tasks.pack_order(
        session,
        order_id,
        picks=[
            LinePick(
                x.line_id,
                x.picked,
                SubstituteAsked(x.substitute.sku_id, x.substitute.quantity)
                if x.substitute
                else None,
            )
            for x in body.picks
        ],
        packages=body.packages,
        providers=providers_of(request).payments,
    )
    return customers(request, packed)


@router.post("/fulfillment/orders/{order_id}/ready", response_model=OrderOut)
def ready_for_pickup(
    order_id: uuid.UUID,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> Any:
    """The packed order waits at the counter: the customer is told, with a pickup code."""
    at_store(session, principal, order_id)
    ready = pickup.make_ready_for_pickup(session, order_id, settings=settings)
    return customers(request, ready)


class PickupIn(BaseModel):
    order: str | None = Field(
        default=None, max_length=40, description="The order number (or id) the customer gives."
    )
    code: str | None = Field(default=None, pattern=r"^\s*[0-9]{6}\s*$")
    qr_payload: str | None = Field(default=None, max_length=200)


@router.post("/fulfillment/pickups", response_model=OrderOut)
@idempotent_at_commit
def hand_over(
    body: PickupIn,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> Any:
    """Hand a waiting order to the customer who gives its code (or shows its QR): once, by a
    clerk of its store. A wrong code answers 422; an order that is not there or is another
    store's answers 404, alike; every refused try is counted, and too many lock the order
    (429) or the clerk's address."""
    # A refused try is counted in this transaction, which holds the order's row: committed
    # with the answer, so the next try (waiting for that row) counts it too.
    with committing_refusals(session, pickup.COUNTED_REFUSALS):
        handed = pickup.hand_over_pickup(
            session,
            clerk=principal,
            client_ip=client_ip(request),
            settings=settings,
            order_ref=body.order,
            code=body.code,
            qr_payload=body.qr_payload,
        )
    return customers(request, handed)


class ShipIn(BaseModel):
    carrier: str = Field(min_length=1, max_length=40, examples=["SF Express"])
    tracking_number: str = Field(min_length=1, max_length=64)


@router.post("/fulfillment/orders/{order_id}/ship", response_model=OrderOut)
def ship(
    order_id: uuid.UUID,
    body: ShipIn,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
) -> Any:
    """The parcel left with the carrier."""
    at_store(session, principal, order_id)
    shipped = tasks.ship_order(
        session, order_id, carrier=body.carrier, tracking_number=body.tracking_number
    )
    return customers(request, shipped)


@router.post("/fulfillment/orders/{order_id}/delivered", response_model=OrderOut)
def delivered(
    order_id: uuid.UUID,
    request: Request,
    principal: Principal = FULFIL,
    session: Session = Depends(db_session),
) -> Any:
    """The carrier confirmed the parcel arrived."""
    at_store(session, principal, order_id)
    return customers(request, tasks.confirm_delivery(session, order_id))
