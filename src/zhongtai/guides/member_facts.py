"""What the task rules know of one member, as plain values: her pickups waiting at the counter,
her orders that missed their promise, recent returns, points about to expire, the categories
she bought from, her preferences and consent — and the catalogue's new arrivals, shared by
every member.

:mod:`zhongtai.guides.task_facts` reads these from the database in bulk; the pure rules decide
on them. Keeping them apart lets the rules be tested with plain data, no session.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class WaitingPickup:
    """An order of hers ready at the counter since ``ready_since``, not collected; it waits
    until ``collect_by`` (then it is cancelled)."""

    order_id: uuid.UUID
    number: str
    store_id: uuid.UUID
    ready_since: datetime
    collect_by: datetime


@dataclass(frozen=True)
class LateOrder:
    """An order of hers that missed the time promised (found by the promise clock at
    ``found_at``): still on its way or in the store (``status_now``), or come late."""

    order_id: uuid.UUID
    number: str
    store_id: uuid.UUID
    fulfillment_type: str
    promised_by: datetime
    found_at: datetime
    status_now: str


@dataclass(frozen=True)
class RecentReturn:
    return_id: uuid.UUID
    order_id: uuid.UUID
    order_number: str
    #: The store's local day she brought the goods back.
    returned_on: date
    #: Fen.
    refund_total: int
    reason: str | None = None


@dataclass(frozen=True)
class ExpiringPoints:
    """A points lot of hers with points left, not yet expired."""

    remaining: int
    #: The store's local day the lot expires.
    expires_on: date


@dataclass(frozen=True)
class BoughtCategory:
    category_id: uuid.UUID
    name: str
    #: The local day of her latest purchase in it.
    last_bought_on: date


@dataclass(frozen=True)
class NewArrival:
    """An active SKU of a product new to the catalogue (one row per SKU)."""

    sku_id: uuid.UUID
    sku_code: str
    sku_name: str
    size: str | None
    product_id: uuid.UUID
    product_name: str
    brand: str | None
    category_id: uuid.UUID
    category_name: str
    #: The local day the product was created.
    created_on: date


@dataclass(frozen=True)
class MemberFacts:
    """What the task rules know of one member."""

    member_id: uuid.UUID
    birthday: date | None = None
    #: The local day of her latest paid purchase (None: she never bought).
    last_purchase_on: date | None = None
    bought_categories: tuple[BoughtCategory, ...] = ()
    #: Her sizes and preferences as the profile holds them, e.g. {"top_size": "M"}.
    preferences: Mapping[str, Any] = field(default_factory=dict)
    points: tuple[ExpiringPoints, ...] = ()
    pickups: tuple[WaitingPickup, ...] = ()
    late_orders: tuple[LateOrder, ...] = ()
    returns: tuple[RecentReturn, ...] = ()
    #: Her latest WeCom marketing consent: True given, False withdrawn, None never recorded.
    marketing_consent: bool | None = None
