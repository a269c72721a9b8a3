"""The events of store fulfilment: late work and the rider's progress."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from zhongtai.core.outbox import event_type


@event_type("fulfillment.sla_breached")
class SlaBreached(BaseModel):
    """A store task passed its deadline unfinished: the manager's queue shows it red."""

    task_id: uuid.UUID
    order_id: uuid.UUID
    store_id: uuid.UUID
    task_status: str
    due_at: datetime
    detected_at: datetime


@event_type("fulfillment.promise_missed")
class PromiseMissed(BaseModel):
    """An order missed the moment its checkout promised the customer (`promised_by`): a
    delivery or parcel not at her door by then (the "30-minute" promise, a parcel's day), still
    in the store (`order_status` paid to packed) or on its way (out for delivery, shipped); a
    pickup or try-on not ready to collect by then (booked or paid, to packed). Recorded once
    per order, under its store: the store's queue marks it and lists it among its missed
    promises, and the customer service can call ahead."""

    order_id: uuid.UUID
    store_id: uuid.UUID
    fulfillment_type: str
    order_status: str
    promised_by: datetime
    detected_at: datetime


@event_type("fulfillment.parcel_unaccounted")
class ParcelUnaccounted(BaseModel):
    """The courier platform no longer knows the job of a rider who has collected the parcel
    (the courier watch asked after it once quiet): nobody can say where the order is, and it
    cannot be booked again. The store calls the platform, or the rider (`rider`), to find it.
    Announced once per dispatch; a callback that comes after all still completes the order."""

    dispatch_id: uuid.UUID
    order_id: uuid.UUID
    store_id: uuid.UUID
    provider: str
    courier_ref: str | None
    rider: dict[str, Any] | None
    detected_at: datetime


@event_type("fulfillment.courier_updated")
class CourierUpdated(BaseModel):
    """The courier platform reported the rider's progress on an order's delivery."""

    dispatch_id: uuid.UUID
    order_id: uuid.UUID
    store_id: uuid.UUID
    provider: str
    status: str
    rider_name: str | None
    occurred_at: datetime
    #: The moment the platform reported. ``occurred_at`` is that moment kept between the booking
    #: and the callback's arrival, so the two differ only when the platform's clock runs wrong
    #: (None in events recorded before this field).
    reported_at: datetime | None = None


@event_type("fulfillment.courier_job_lost")
class CourierJobLost(BaseModel):
    """The platform no longer had a booked rider's job -- called off or forgotten without a word
    back -- as the courier watch found when the job had gone quiet: the dispatch ended, and a
    rider was booked again in its place (``rebooked_dispatch_id``), or, when booking again
    failed, the store must book one (None)."""

    dispatch_id: uuid.UUID
    order_id: uuid.UUID
    store_id: uuid.UUID
    provider: str
    courier_ref: str | None
    rebooked_dispatch_id: uuid.UUID | None
    detected_at: datetime
