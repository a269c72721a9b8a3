"""The delivery promise of one store for one basket, and the SLA deadlines that follow from it."""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from zhongtai.core.clock import as_utc
from zhongtai.core.errors import InvalidInput
from zhongtai.orders.kinds import FulfillmentType, LineKind
from zhongtai.stores.models import LocationKind
from zhongtai.stores.rules import distance_m

#: Preparation of common in-store services; a store may set its own in ``PromiseSettings``.
DEFAULT_SERVICE_PREP_SECONDS: Mapping[str, int] = MappingProxyType(
    {"fish_cleaning": 600, "meat_cutting": 420, "cake_writing": 900, "alterations": 1800}
)


@dataclass(frozen=True)
class GeoPoint:
    """A place on the map (WGS-84 degrees): the customer's address or a store."""

    latitude: float
    longitude: float


@dataclass(frozen=True)
class BasketLine:
    """One line of the basket as fulfilment sees it.

    A service line (fish cleaning, alterations) is sold as a SKU too but needs no stock; it names
    the service the store must offer and adds that service's preparation time.
    """

    sku_id: uuid.UUID
    quantity: int
    kind: LineKind = LineKind.GOODS
    service: str | None = None


@dataclass(frozen=True)
class PromiseSettings:
    """How one store turns work into minutes. The defaults suit a mid-size supermarket."""

    pick_seconds_per_queued_task: int = 120
    pick_pack_seconds_per_order: int = 180
    pick_pack_seconds_per_line: int = 45
    service_prep_seconds: Mapping[str, int] = field(
        default_factory=lambda: DEFAULT_SERVICE_PREP_SECONDS
    )
    #: A service the store offers but has no time for in ``service_prep_seconds``.
    default_service_prep_seconds: int = 900
    road_factor: float = 1.4
    rider_speed_m_per_min: float = 250.0
    #: The rider collecting at the counter and handing over at the door.
    handover_seconds: int = 120

    def prep_seconds(self, service: str) -> int:
        return self.service_prep_seconds.get(service, self.default_service_prep_seconds)


@dataclass(frozen=True)
class StoreCandidate:
    """A store, warehouse or DC as sourcing sees it at one moment.

    ``fulfillment_types`` are the types left after the caller applied capabilities and pilot
    rules. ``stock`` is the channel ATP of the basket's SKUs. ``next_open_at`` is the next
    opening when closed now, or the opening after ``closes_at`` when open now (None: unknown
    within the horizon). All instants are UTC.
    """

    store_id: uuid.UUID
    code: str
    latitude: float
    longitude: float
    kind: LocationKind = LocationKind.STORE
    open_now: bool = True
    next_open_at: datetime | None = None
    closes_at: datetime | None = None
    fulfillment_types: frozenset[FulfillmentType] = frozenset()
    #: The store takes no orders of the type asked until then (a manager's pause).
    paused_until: datetime | None = None
    delivery_radius_m: int | None = None
    services: frozenset[str] = frozenset()
    stock: Mapping[uuid.UUID, int] = field(default_factory=dict)
    open_tasks: int = 0
    settings: PromiseSettings = field(default_factory=PromiseSettings)


@dataclass(frozen=True)
class Promise:
    """When a store will have the order ready and (for delivery) at the customer's door.

    The seconds add up exactly: wait for opening + queue wait + pick/pack + service prep +
    handover + travel = ``deliver_by`` - now. ``minutes`` rounds that up, so a promise is never
    shorter than the model says.
    """

    fulfillment_type: FulfillmentType
    starts_at: datetime
    ready_at: datetime
    deliver_by: datetime
    minutes: int
    wait_for_opening_seconds: float
    queue_wait_seconds: int
    pick_pack_seconds: int
    service_prep_seconds: int
    handover_seconds: int
    travel_seconds: int
    distance_m: float | None
    #: Work starts at a later opening: a slot to offer, not an instant promise.
    slot: bool


def promise_for_workload(
    store: StoreCandidate,
    *,
    goods_lines: int,
    services: Collection[str],
    distance: float | None,
    now: datetime,
    fulfillment_type: FulfillmentType,
) -> Promise | None:
    """The promise for ``goods_lines`` lines and ``services`` at ``distance`` metres.

    Queue wait = open tasks x average pick time; pick/pack = per order + per goods line; service
    prep = the longest of the services (they run side by side with picking's tail); travel =
    distance x road factor / rider speed, for delivery only. An in-store sale is handed over at
    the till: only service prep counts. A closed store starts at ``next_open_at``; a store that
    would close before the order is ready starts at its next opening too. None when neither
    opening is known: the store cannot promise anything.
    """
    now = as_utc(now)
    cfg = store.settings
    prep = max((cfg.prep_seconds(s) for s in services), default=0)
    if fulfillment_type is FulfillmentType.IN_STORE:
        queue = pick_pack = 0
    else:
        queue = max(0, store.open_tasks) * cfg.pick_seconds_per_queued_task
        pick_pack = cfg.pick_pack_seconds_per_order + goods_lines * cfg.pick_pack_seconds_per_line
    work = timedelta(seconds=queue + pick_pack + prep)

    starts_at: datetime | None = now if store.open_now else store.next_open_at
    if store.open_now and store.closes_at is not None and now + work > as_utc(store.closes_at):
        starts_at = store.next_open_at
    if starts_at is None:
        return None
    starts_at = max(now, as_utc(starts_at))
    ready_at = starts_at + work

    handover = travel = 0
    if fulfillment_type is FulfillmentType.DELIVERY and distance is not None:
        handover = cfg.handover_seconds
        travel = math.ceil(distance * cfg.road_factor / cfg.rider_speed_m_per_min * 60)
    deliver_by = ready_at + timedelta(seconds=handover + travel)
    total = (deliver_by - now).total_seconds()
    return Promise(
        fulfillment_type=fulfillment_type,
        starts_at=starts_at,
        ready_at=ready_at,
        deliver_by=deliver_by,
        minutes=math.ceil(total / 60),
        wait_for_opening_seconds=(starts_at - now).total_seconds(),
        queue_wait_seconds=queue,
        pick_pack_seconds=pick_pack,
        service_prep_seconds=prep,
        handover_seconds=handover,
        travel_seconds=travel,
        distance_m=distance,
        slot=starts_at > now,
    )


def delivery_promise(
    store: StoreCandidate,
    address: GeoPoint | None,
    basket: Sequence[BasketLine],
    now: datetime,
    *,
    fulfillment_type: FulfillmentType = FulfillmentType.DELIVERY,
) -> Promise | None:
    """What ``store`` can promise for ``basket`` (see ``promise_for_workload``).

    Delivery needs the address; other types use it, when given, only to report the distance.
    Stock, radius and services are sourcing's business, not checked here.
    """
    if fulfillment_type is FulfillmentType.DELIVERY and address is None:
        raise InvalidInput.field("address", "is required for delivery")
    distance = (
        None
        if address is None
        else distance_m(store.latitude, store.longitude, address.latitude, address.longitude)
    )
    return promise_for_workload(
        store,
        goods_lines=sum(1 for line in basket if line.kind is LineKind.GOODS),
        services={line.service for line in basket if line.service is not None},
        distance=distance,
        now=now,
        fulfillment_type=fulfillment_type,
    )


# --- SLA -------------------------------------------------------------------------------------


class TaskKind(StrEnum):
    """The store tasks that run against a clock."""

    PICK = "pick"
    PACK = "pack"
    COURIER = "courier"  # handed to a rider, who must reach the door
    PICKUP = "pickup"  # waiting in the store for the customer (pickup and reserve_try)


#: Picking must finish this long before the promised ready time, to leave packing its time.
PACK_ALLOWANCE = timedelta(minutes=2)
#: How long goods wait for the customer before the store may put them back on the shelf.
PICKUP_HOLD = timedelta(days=3)
#: Deadlines for tasks of an order without a promise (an in-store sale, an imported order).
FALLBACK_SLA: Mapping[TaskKind, timedelta] = MappingProxyType(
    {
        TaskKind.PICK: timedelta(minutes=20),
        TaskKind.PACK: timedelta(minutes=30),
        TaskKind.COURIER: timedelta(minutes=60),
        TaskKind.PICKUP: PICKUP_HOLD,
    }
)


def sla_deadline(kind: TaskKind, created_at: datetime, promise: Promise | None) -> datetime:
    """When a task is due.

    With a promise: pick by ready time - ``PACK_ALLOWANCE`` (never before work starts), pack
    by the ready time, the courier by ``deliver_by``, a pickup by ready time + ``PICKUP_HOLD``.
    Without one: ``created_at`` + ``FALLBACK_SLA[kind]``. A task created after its deadline is
    simply late: the deadline does not move.
    """
    if promise is None:
        return as_utc(created_at) + FALLBACK_SLA[kind]
    match kind:
        case TaskKind.PICK:
            return max(promise.starts_at, promise.ready_at - PACK_ALLOWANCE)
        case TaskKind.PACK:
            return promise.ready_at
        case TaskKind.COURIER:
            return promise.deliver_by
        case TaskKind.PICKUP:
            return promise.ready_at + PICKUP_HOLD


def sla_breached(deadline: datetime, now: datetime) -> bool:
    """Breached once the clock passes the deadline; a task done exactly on it is on time."""
    return as_utc(now) > as_utc(deadline)
