"""The courier interface: how a store hands a parcel to a delivery platform and hears how it goes.

Status callbacks are HTTP POSTs of JSON to the dispatch's ``callback_url``, signed like payment
notifications: ``Zhongtai-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of f"{t}." + body>``
under the secret shared with the platform; ``parse_callback`` refuses a bad signature or a
timestamp more than 300 s from now. A dispatch moves assigned → arrived_at_store → picked_up →
delivered, or ends in failed; ``sequence`` grows by one per update of that dispatch, so a receiver
ignores an update older than the one it has applied, and one that is no step forward (an earlier
step, anything after delivered or failed). ``occurred_at`` is the platform's clock: a receiver
keeps it between the booking and its own now. Rider names and phones arrive masked.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from zhongtai.core.errors import InvalidInput


class CourierStatus(StrEnum):
    """Where a dispatched parcel is, as the delivery platform reports it."""

    ASSIGNED = "assigned"  # a rider accepted the job
    ARRIVED_AT_STORE = "arrived_at_store"
    PICKED_UP = "picked_up"  # the store handed the parcel over
    DELIVERED = "delivered"
    FAILED = "failed"  # e.g. the customer could not be reached; the parcel comes back


#: The order a successful delivery goes through.
COURIER_JOURNEY = (
    CourierStatus.ASSIGNED,
    CourierStatus.ARRIVED_AT_STORE,
    CourierStatus.PICKED_UP,
    CourierStatus.DELIVERED,
)


@dataclass(frozen=True)
class GeoPoint:
    lat: float
    lng: float

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat <= 90.0:
            raise InvalidInput.field("lat", "must be between -90 and 90")
        if not -180.0 <= self.lng <= 180.0:
            raise InvalidInput.field("lng", "must be between -180 and 180")


@dataclass(frozen=True)
class DispatchRequest:
    """Ask for a rider to take one parcel from a store to a customer.

    ``dispatch_id`` is our idempotency key at the platform: asking again answers the same ticket.
    """

    dispatch_id: uuid.UUID
    order_id: uuid.UUID
    store_id: uuid.UUID
    pickup: GeoPoint  # the store
    dropoff: GeoPoint  # the customer
    ready_at: datetime  # when the parcel will be packed and waiting (UTC)
    callback_url: str

    def __post_init__(self) -> None:
        if self.ready_at.tzinfo is None:
            raise InvalidInput.field("ready_at", "must carry a time zone (UTC)")
        if not self.callback_url.startswith(("http://", "https://")):
            raise InvalidInput.field("callback_url", "must be an http(s) URL")


@dataclass(frozen=True)
class DispatchTicket:
    """The platform's answer: its reference and when it expects to pick up and deliver."""

    courier_ref: str
    dispatch_id: uuid.UUID
    pickup_at: datetime  # estimated
    delivered_at: datetime  # estimated
    distance_m: int  # store to customer, as the rider rides


@dataclass(frozen=True)
class CourierUpdate:
    """One verified status callback."""

    event_id: str
    courier_ref: str
    dispatch_id: uuid.UUID
    order_id: uuid.UUID
    status: CourierStatus
    sequence: int  # 1, 2, 3 ... per dispatch; a lower one than already applied is stale
    occurred_at: datetime
    rider_name: str | None = None  # masked, e.g. 王**
    rider_phone: str | None = None  # masked, e.g. 138****0001
    failure_reason: str | None = None


@dataclass(frozen=True)
class CourierJob:
    """Where a booked job stands at the platform, asked for rather than called back: a receiver
    asks when what it recorded may have parted from the platform's -- its call-off taken, then
    its own transaction lost (no callback ever follows a job called off), or a callback it
    never received (the platform gave up sending it).

    ``last_update`` is the job's latest step as its callback says it, numbered in the same
    sequence: a receiver that lost that callback applies this instead, and the callback, if it
    ever comes, is then stale. None before a rider accepts, or from a platform that cannot
    tell."""

    courier_ref: str
    status: CourierStatus | None  # the last step; None until a rider accepts the job
    cancelled: bool  # called off: no rider comes, no callback follows
    last_update: CourierUpdate | None = None


class CourierService(Protocol):
    """A delivery platform (a third-party instant-delivery service, the simulated fleet)."""

    @property
    def name(self) -> str: ...

    def dispatch(self, request: DispatchRequest) -> DispatchTicket:
        """Book a rider; idempotent by ``request.dispatch_id``."""
        ...

    def cancel(self, courier_ref: str) -> None:
        """Call the rider off; allowed until the parcel is picked up (after it: ``Conflict``),
        harmless when repeated (a job already called off answers as the first time did).
        A job the platform does not know raises ``NotFound``."""
        ...

    def job(self, courier_ref: str) -> CourierJob | None:
        """Where the job stands now; None when the platform knows no such job."""
        ...

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CourierUpdate:
        """Verify and read a status callback; raises ``CallbackRejected`` when not genuine."""
        ...
