"""Pure rules of marketplace stock pushes: which dirty SKUs go out together, and the body."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The JSON body's format; a receiver may refuse versions it does not know.
PUSH_FORMAT = "zhongtai.stock.v1"


@dataclass(frozen=True)
class DirtyStock:
    """One SKU at one store whose sellable quantity the connection has not seen yet."""

    connection_id: uuid.UUID
    location_id: uuid.UUID
    sku_id: uuid.UUID
    version: int
    #: Failed pushes since the last success (the next retry waits longer).
    failures: int = 0
    #: The connection no longer sells from the store: the marketplace is told 0, whatever the
    #: store holds, so that it stops selling there instead of keeping the last figure it got.
    withdrawn: bool = False


@dataclass(frozen=True)
class PushBatch:
    """The SKUs of one store pushed to one connection in one request."""

    connection_id: uuid.UUID
    location_id: uuid.UUID
    items: tuple[DirtyStock, ...]

    @property
    def key(self) -> tuple[uuid.UUID, uuid.UUID]:
        return (self.connection_id, self.location_id)

    @property
    def failures(self) -> int:
        return max(item.failures for item in self.items)


@dataclass(frozen=True)
class PushedItem:
    """What the marketplace is told of one SKU: its sellable quantity as of ``version``."""

    sku_code: str
    quantity: int
    version: int


def plan_batches(
    due: Sequence[DirtyStock],
    *,
    busy: Collection[tuple[uuid.UUID, uuid.UUID]],
    in_flight_per_connection: Mapping[uuid.UUID, int],
    per_connection: int,
    max_items: int,
    room: int,
) -> list[PushBatch]:
    """Group due SKUs into at most ``room`` requests, one per (connection, store), in due order.

    A (connection, store) with a request in flight is left for a later pass, so one store's
    pushes never overtake each other; a connection never has more than ``per_connection``
    requests open, so a slow marketplace cannot take every slot; a request carries at most
    ``max_items`` SKUs (the rest wait for the next pass).
    """
    if per_connection < 1 or max_items < 1:
        raise ValueError("per_connection and max_items are 1 or more")
    grouped: dict[tuple[uuid.UUID, uuid.UUID], list[DirtyStock]] = {}
    open_count = dict(in_flight_per_connection)
    busy_keys = set(busy)
    for item in due:
        key = (item.connection_id, item.location_id)
        if key in busy_keys:
            continue
        if key not in grouped:
            if len(grouped) >= room or open_count.get(item.connection_id, 0) >= per_connection:
                continue
            grouped[key] = []
            open_count[item.connection_id] = open_count.get(item.connection_id, 0) + 1
        if len(grouped[key]) < max_items:
            grouped[key].append(item)
    return [PushBatch(c, loc, tuple(items)) for (c, loc), items in grouped.items()]


def push_body(
    connection: str, store_code: str, items: Sequence[PushedItem], sent_at: str
) -> dict[str, Any]:
    """The JSON document of one push (see docs/marketplace.md)."""
    return {
        "format": PUSH_FORMAT,
        "connection": connection,
        "store": store_code,
        "sent_at": sent_at,
        "items": [
            {"sku": item.sku_code, "quantity": item.quantity, "version": item.version}
            for item in items
        ],
    }
