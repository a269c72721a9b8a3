"""The events of the guides context: customers bound and handed over, guides leaving, sales
credited to guides. Payloads carry ids, never personal data."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from zhongtai.core.outbox import event_type


@event_type("guide.customer_bound")
class GuideCustomerBound(BaseModel):
    """A member has a new guide (first binding, a takeover, a handover or a reassignment)."""

    member_id: uuid.UUID
    guide_id: uuid.UUID
    previous_guide_id: uuid.UUID | None
    source: str
    reason: str
    protected_until: datetime


@event_type("guide.customer_unbound")
class GuideCustomerUnbound(BaseModel):
    """A member no longer has a guide (e.g. she removed the guide from her WeCom contacts)."""

    member_id: uuid.UUID
    guide_id: uuid.UUID
    reason: str


@event_type("guide.left")
class GuideLeft(BaseModel):
    """A guide left the chain; her customers were handed over."""

    guide_id: uuid.UUID
    store_id: uuid.UUID
    customers_handed_over: int
    successor_ids: list[uuid.UUID]


@event_type("guide.sale_attributed")
class GuideSaleAttributed(BaseModel):
    """Lines of a completed order were credited to a guide (one event per guide and order)."""

    order_id: uuid.UUID
    guide_id: uuid.UUID
    store_id: uuid.UUID
    reason: str
    net_amount: int
    commission: int
