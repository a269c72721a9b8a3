"""The events of stores: a pause of one way of taking orders, and its end."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from zhongtai.core.outbox import event_type


@event_type("store.capability_paused")
class CapabilityPaused(BaseModel):
    """A store takes no orders of one capability (`delivery`, `pickup`, `ship_from_store`)
    until `paused_until`, saying why: channel apps and marketplace storefronts show it busy for
    that service meanwhile. It takes them again by itself at that moment, or earlier with
    `store.capability_resumed`. A pause moved to another moment is announced again."""

    store_id: uuid.UUID
    capability: str
    paused_until: datetime
    reason: str


@event_type("store.capability_resumed")
class CapabilityResumed(BaseModel):
    """A store takes orders of the capability again before its pause ended."""

    store_id: uuid.UUID
    capability: str
    resumed_at: datetime
