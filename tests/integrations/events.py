"""Event types declared for the integration tests only."""

from __future__ import annotations

from pydantic import BaseModel

from zhongtai.core.outbox import event_type


@event_type("test.shelf_counted")
class ShelfCounted(BaseModel):
    """A shelf was counted (integration tests only)."""

    shelf: str
    n: int


@event_type("test.price_tagged")
class PriceTagged(BaseModel):
    """A price tag was printed (integration tests only)."""

    tag: str
