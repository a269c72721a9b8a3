"""The events of store fulfilment: late work and the rider's progress."""

from __future__ import annotations

import uuid
from datetime import datetime

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
