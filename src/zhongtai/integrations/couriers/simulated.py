"""The simulated courier fleet: riders who take parcels from stores to customers, and call back.

Riders are assigned in turn. Each dispatch follows a timeline computed from distance:

- assigned ``assign_minutes`` after the dispatch;
- arrived at the store after riding ``approach_m`` from wherever the rider was;
- picked up ``handover_minutes`` after the later of arriving and the parcel's ``ready_at``;
- delivered after riding the store-to-customer distance (haversine × ``road_factor``) at
  ``speed_m_per_min`` plus ``handover_minutes`` at the door.

``time_scale`` compresses the riders' minutes (600: a 20-minute ride lasts 2 seconds) but not
``ready_at``, which is a real moment the store promised. Every step is a real signed HTTP callback
sent from a background thread and retried until the receiver answers 2xx. With ``auto=False``
nothing moves by itself: ``advance`` takes one step, ``fail`` ends a delivery as failed.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import TypeAdapter

from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.integrations.couriers.provider import (
    COURIER_JOURNEY,
    CourierJob,
    CourierStatus,
    CourierUpdate,
    DispatchRequest,
    DispatchTicket,
)
from zhongtai.integrations.signed_callbacks import (
    DEFAULT_TOLERANCE_SECONDS,
    SignedCallback,
    SignedCallbackProvider,
)
from zhongtai.stores.rules import distance_m

_UPDATE = TypeAdapter(CourierUpdate)

# The platform only ever shares masked rider details, so the roster holds nothing more.
_RIDER_NAMES = ("王**", "李**", "张**", "刘**", "陈**", "杨**", "赵**", "黄**", "周**", "吴**")


@dataclass(frozen=True)
class Rider:
    name: str  # masked
    phone: str  # masked


@dataclass
class _Delivery:
    request: DispatchRequest
    ticket: DispatchTicket
    rider: Rider
    plan: dict[CourierStatus, datetime]
    status: CourierStatus | None = None  # None until a rider is assigned
    cancelled: bool = False
    #: (event id, body) of each callback; index = sequence - 1
    callbacks: list[tuple[str, bytes]] = field(default_factory=list)
    last_update: CourierUpdate | None = None

    def next_status(self) -> CourierStatus | None:
        if self.cancelled or self.status in (CourierStatus.DELIVERED, CourierStatus.FAILED):
            return None
        if self.status is None:
            return COURIER_JOURNEY[0]
        return COURIER_JOURNEY[COURIER_JOURNEY.index(self.status) + 1]


class SimulatedCourierFleet(SignedCallbackProvider):
    """An in-memory, thread-safe delivery platform whose status callbacks are real HTTP POSTs."""

    name = "simulated"

    def __init__(
        self,
        secret: str,
        *,
        riders: int = 8,
        speed_m_per_min: float = 250.0,
        time_scale: float = 1.0,
        auto: bool = True,
        road_factor: float = 1.3,
        assign_minutes: float = 1.0,
        approach_m: float = 800.0,
        handover_minutes: float = 1.0,
        max_distance_m: float = 15_000.0,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        retry_base_seconds: float = 0.05,
        retry_cap_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if riders < 1:
            raise InvalidInput.field("riders", "a fleet needs at least one rider")
        if speed_m_per_min <= 0:
            raise InvalidInput.field("speed_m_per_min", "riders must move: a positive speed")
        if time_scale <= 0:
            raise InvalidInput.field("time_scale", "must be positive (1.0 is real time)")
        super().__init__(
            secret,
            sender_name="simulated-courier-callbacks",
            tolerance_seconds=tolerance_seconds,
            retry_base_seconds=retry_base_seconds,
            retry_cap_seconds=retry_cap_seconds,
            clock=clock,
        )
        self.riders = tuple(
            Rider(_RIDER_NAMES[i % len(_RIDER_NAMES)], f"138****{i + 1:04d}") for i in range(riders)
        )
        self.speed_m_per_min = speed_m_per_min
        self.time_scale = time_scale
        self.auto = auto
        self.road_factor = road_factor
        self.assign_minutes = assign_minutes
        self.approach_m = approach_m
        self.handover_minutes = handover_minutes
        self.max_distance_m = max_distance_m
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._by_ref: dict[str, _Delivery] = {}
        self._by_dispatch_id: dict[uuid.UUID, _Delivery] = {}

    # --- the courier interface ------------------------------------------------------------------

    def dispatch(self, request: DispatchRequest) -> DispatchTicket:
        with self._lock:
            known = self._by_dispatch_id.get(request.dispatch_id)
            if known is not None:
                if known.request != request:
                    raise Conflict(
                        f"dispatch {request.dispatch_id} was already booked with other details; "
                        "a dispatch id names one request"
                    )
                return known.ticket
            ride_m = self.road_factor * distance_m(
                request.pickup.lat, request.pickup.lng, request.dropoff.lat, request.dropoff.lng
            )
            if ride_m > self.max_distance_m:
                raise InvalidInput.field(
                    "dropoff",
                    f"{ride_m / 1000:.1f} km from the store is beyond the fleet's "
                    f"{self.max_distance_m / 1000:.1f} km",
                )
            plan = self._plan(utcnow(), as_utc(request.ready_at), ride_m)
            courier_ref = f"sim_dsp_{uuid.uuid4().hex}"
            delivery = _Delivery(
                request=request,
                ticket=DispatchTicket(
                    courier_ref=courier_ref,
                    dispatch_id=request.dispatch_id,
                    pickup_at=plan[CourierStatus.PICKED_UP],
                    delivered_at=plan[CourierStatus.DELIVERED],
                    distance_m=round(ride_m),
                ),
                rider=self.riders[next(self._turn) % len(self.riders)],
                plan=plan,
            )
            self._by_ref[courier_ref] = delivery
            self._by_dispatch_id[request.dispatch_id] = delivery
            if self.auto:
                now = utcnow()
                for status, at in plan.items():
                    self._sender.call_later(
                        (at - now).total_seconds(), self._step(courier_ref, status)
                    )
            return delivery.ticket

    def cancel(self, courier_ref: str) -> None:
        with self._lock:
            delivery = self._delivery(courier_ref)
            if delivery.cancelled:
                return
            if delivery.status in (
                CourierStatus.PICKED_UP,
                CourierStatus.DELIVERED,
                CourierStatus.FAILED,
            ):
                raise Conflict(
                    f"dispatch {courier_ref} is {delivery.status}; a rider can be called off "
                    "only before picking the parcel up"
                )
            delivery.cancelled = True

    def job(self, courier_ref: str) -> CourierJob | None:
        with self._lock:
            delivery = self._by_ref.get(courier_ref)
            if delivery is None:
                return None
            return CourierJob(
                courier_ref, delivery.status, delivery.cancelled, delivery.last_update
            )

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CourierUpdate:
        return self._read_callback(headers, body, _UPDATE, "a courier status callback")

    # --- stepping by hand, and test hooks ---------------------------------------------------

    def advance(self, courier_ref: str) -> CourierUpdate:
        """Take the next step of the journey now and call back."""
        with self._lock:
            delivery = self._delivery(courier_ref)
            status = delivery.next_status()
            if status is None:
                state = "cancelled" if delivery.cancelled else delivery.status
                raise Conflict(f"dispatch {courier_ref} is {state}; there is no next step")
            return self._move(delivery, status)

    def fail(self, courier_ref: str, reason: str = "customer unreachable") -> CourierUpdate:
        """End the delivery as failed (the rider brings the parcel back to the store)."""
        with self._lock:
            delivery = self._delivery(courier_ref)
            if delivery.next_status() is None:
                state = "cancelled" if delivery.cancelled else delivery.status
                raise Conflict(f"dispatch {courier_ref} is {state}; it can no longer fail")
            return self._move(delivery, CourierStatus.FAILED, failure_reason=reason)

    def status(self, courier_ref: str) -> CourierStatus | None:
        """The last status called back (None before a rider is assigned)."""
        with self._lock:
            return self._delivery(courier_ref).status

    def resend(self, courier_ref: str, sequence: int) -> None:
        """Deliver an earlier callback once more (same event id and sequence)."""
        with self._lock:
            delivery = self._delivery(courier_ref)
            if not 1 <= sequence <= len(delivery.callbacks):
                raise NotFound(f"dispatch {courier_ref} has no callback {sequence}")
            event_id, body = delivery.callbacks[sequence - 1]
            self._sender.send(delivery.request.callback_url, event_id, body)

    def signed_callbacks(self, courier_ref: str) -> list[SignedCallback]:
        """Every callback of a dispatch so far, signed now, as the fleet POSTs it."""
        with self._lock:
            delivery = self._delivery(courier_ref)
            return self._signed_now(delivery.request.callback_url, delivery.callbacks)

    # --- inside -----------------------------------------------------------------------------

    def _plan(
        self, dispatched_at: datetime, ready_at: datetime, ride_m: float
    ) -> dict[CourierStatus, datetime]:
        """When each step happens: rider minutes are compressed by time_scale, ready_at is not."""

        def minutes(m: float) -> timedelta:
            return timedelta(seconds=m * 60.0 / self.time_scale)

        assigned = dispatched_at + minutes(self.assign_minutes)
        arrived = assigned + minutes(self.approach_m / self.speed_m_per_min)
        picked_up = max(arrived, ready_at) + minutes(self.handover_minutes)
        delivered = picked_up + minutes(ride_m / self.speed_m_per_min + self.handover_minutes)
        return {
            CourierStatus.ASSIGNED: assigned,
            CourierStatus.ARRIVED_AT_STORE: arrived,
            CourierStatus.PICKED_UP: picked_up,
            CourierStatus.DELIVERED: delivered,
        }

    def _step(self, courier_ref: str, status: CourierStatus) -> Callable[[], None]:
        def step() -> None:
            with self._lock:
                delivery = self._by_ref[courier_ref]
                # A step taken by hand, a failure or a cancellation makes the planned one moot.
                if delivery.next_status() is status:
                    self._move(delivery, status)

        return step

    def _move(
        self,
        delivery: _Delivery,
        status: CourierStatus,
        *,
        failure_reason: str | None = None,
    ) -> CourierUpdate:
        delivery.status = status
        update = CourierUpdate(
            event_id=f"sim_evt_{uuid.uuid4().hex}",
            courier_ref=delivery.ticket.courier_ref,
            dispatch_id=delivery.request.dispatch_id,
            order_id=delivery.request.order_id,
            status=status,
            sequence=len(delivery.callbacks) + 1,
            occurred_at=utcnow(),
            rider_name=delivery.rider.name,
            rider_phone=delivery.rider.phone,
            failure_reason=failure_reason,
        )
        body = _UPDATE.dump_json(update)
        delivery.callbacks.append((update.event_id, body))
        delivery.last_update = update
        self._sender.send(delivery.request.callback_url, update.event_id, body)
        return update

    def _delivery(self, courier_ref: str) -> _Delivery:
        delivery = self._by_ref.get(courier_ref)
        if delivery is None:
            raise NotFound(f"the fleet has no dispatch {courier_ref}")
        return delivery
