"""The delivery promise of one store (queue, pick/pack, service prep, travel) and SLA clocks."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.core.errors import InvalidInput
from zhongtai.fulfillment.rules import (
    PACK_ALLOWANCE,
    PICKUP_HOLD,
    BasketLine,
    GeoPoint,
    Promise,
    PromiseSettings,
    StoreCandidate,
    TaskKind,
    delivery_promise,
    promise_for_workload,
    sla_breached,
    sla_deadline,
)
from zhongtai.orders.kinds import FulfillmentType, LineKind
from zhongtai.stores.rules import distance_m

NOW = datetime(2024, 6, 5, 10, 0, tzinfo=UTC)
PEOPLES_SQUARE = GeoPoint(31.2304, 121.4737)
ORIENTAL_PEARL = GeoPoint(31.2397, 121.4998)
SETTINGS = PromiseSettings(
    pick_seconds_per_queued_task=100,
    pick_pack_seconds_per_order=200,
    pick_pack_seconds_per_line=30,
    service_prep_seconds={"fish_cleaning": 600, "cake_writing": 900},
    default_service_prep_seconds=300,
    road_factor=1.5,
    rider_speed_m_per_min=300,
    handover_seconds=60,
)
SALMON = BasketLine(uuid.UUID(int=1), 1)
MILK = BasketLine(uuid.UUID(int=2), 2)
CLEANING = BasketLine(uuid.UUID(int=3), 1, LineKind.SERVICE, "fish_cleaning")
CAKE_TEXT = BasketLine(uuid.UUID(int=4), 1, LineKind.SERVICE, "cake_writing")


def store(**changes: object) -> StoreCandidate:
    fields: dict[str, object] = {
        "store_id": uuid.UUID(int=100),
        "code": "SH001",
        "latitude": PEOPLES_SQUARE.latitude,
        "longitude": PEOPLES_SQUARE.longitude,
        "open_tasks": 3,
        "settings": SETTINGS,
    }
    fields.update(changes)
    return StoreCandidate(**fields)  # type: ignore[arg-type]


def promise(candidate: StoreCandidate, basket: list[BasketLine], **kw: object) -> Promise:
    result = delivery_promise(candidate, ORIENTAL_PEARL, basket, NOW, **kw)  # type: ignore[arg-type]
    assert result is not None
    return result


def test_a_delivery_eta_is_queue_plus_pick_pack_plus_service_plus_handover_plus_travel() -> None:
    result = promise(store(), [SALMON, MILK, CLEANING])
    metres = distance_m(
        PEOPLES_SQUARE.latitude,
        PEOPLES_SQUARE.longitude,
        ORIENTAL_PEARL.latitude,
        ORIENTAL_PEARL.longitude,
    )
    assert result.queue_wait_seconds == 3 * 100
    assert result.pick_pack_seconds == 200 + 2 * 30  # the service line is not picked
    assert result.service_prep_seconds == 600
    assert result.handover_seconds == 60
    assert result.travel_seconds == math.ceil(metres * 1.5 / 300 * 60)
    assert result.ready_at == NOW + timedelta(seconds=300 + 260 + 600)
    assert result.deliver_by == result.ready_at + timedelta(seconds=60 + result.travel_seconds)
    assert result.minutes == math.ceil((result.deliver_by - NOW).total_seconds() / 60)
    assert result.distance_m == pytest.approx(metres)
    assert not result.slot


def test_several_services_take_the_longest_preparation_not_the_sum() -> None:
    assert promise(store(), [SALMON, CLEANING, CAKE_TEXT]).service_prep_seconds == 900


def test_a_service_without_a_configured_time_takes_the_store_default() -> None:
    sewing = BasketLine(uuid.UUID(int=5), 1, LineKind.SERVICE, "alterations")
    assert promise(store(), [sewing]).service_prep_seconds == 300


def test_pickup_is_promised_when_ready_without_travel() -> None:
    result = promise(store(), [SALMON], fulfillment_type=FulfillmentType.PICKUP)
    assert result.travel_seconds == 0
    assert result.handover_seconds == 0
    assert result.deliver_by == result.ready_at


def test_an_in_store_sale_waits_only_for_its_services() -> None:
    result = promise(store(), [SALMON, CLEANING], fulfillment_type=FulfillmentType.IN_STORE)
    assert result.ready_at == NOW + timedelta(seconds=600)
    assert promise(store(), [SALMON], fulfillment_type=FulfillmentType.IN_STORE).minutes == 0


def test_a_closed_store_offers_a_slot_from_its_next_opening() -> None:
    opens = NOW + timedelta(hours=8)
    result = promise(store(open_now=False, next_open_at=opens), [SALMON])
    assert result.slot
    assert result.starts_at == opens
    assert result.ready_at == opens + timedelta(seconds=300 + 230)
    assert result.minutes > 8 * 60


def test_a_closed_store_without_a_known_opening_promises_nothing() -> None:
    assert delivery_promise(store(open_now=False), ORIENTAL_PEARL, [SALMON], NOW) is None


def test_a_store_closing_before_the_order_is_ready_starts_at_its_next_opening() -> None:
    closes = NOW + timedelta(minutes=5)
    tomorrow = NOW + timedelta(hours=22)
    result = promise(store(closes_at=closes, next_open_at=tomorrow), [SALMON, CLEANING])
    assert result.slot
    assert result.starts_at == tomorrow


def test_a_store_closing_after_the_order_is_ready_promises_now() -> None:
    result = promise(store(closes_at=NOW + timedelta(hours=1)), [SALMON])
    assert not result.slot
    assert result.starts_at == NOW


def test_a_store_closing_too_soon_with_no_next_opening_promises_nothing() -> None:
    closing = store(closes_at=NOW + timedelta(minutes=5))
    assert delivery_promise(closing, ORIENTAL_PEARL, [SALMON, CLEANING], NOW) is None


def test_delivery_needs_an_address() -> None:
    with pytest.raises(InvalidInput):
        delivery_promise(store(), None, [SALMON], NOW)


workloads = st.fixed_dictionaries(
    {
        "open_tasks": st.integers(0, 50),
        "goods_lines": st.integers(0, 30),
        "services": st.sets(st.sampled_from(["fish_cleaning", "cake_writing", "other"])),
        "distance": st.floats(0, 50_000),
        "opens_in": st.none() | st.integers(0, 3 * 24 * 3600),
    }
)


def _promise_of(w: dict[str, object]) -> Promise | None:
    opens_in = w["opens_in"]
    candidate = store(
        open_tasks=w["open_tasks"],
        open_now=opens_in is None,
        next_open_at=None if opens_in is None else NOW + timedelta(seconds=opens_in),  # type: ignore[arg-type]
    )
    return promise_for_workload(
        candidate,
        goods_lines=w["goods_lines"],  # type: ignore[arg-type]
        services=w["services"],  # type: ignore[arg-type]
        distance=w["distance"],  # type: ignore[arg-type]
        now=NOW,
        fulfillment_type=FulfillmentType.DELIVERY,
    )


@given(workloads)
def test_the_parts_of_a_promise_add_up_and_its_minutes_never_undershoot(
    w: dict[str, object],
) -> None:
    result = _promise_of(w)
    assert result is not None
    parts = (
        result.wait_for_opening_seconds
        + result.queue_wait_seconds
        + result.pick_pack_seconds
        + result.service_prep_seconds
        + result.handover_seconds
        + result.travel_seconds
    )
    total = (result.deliver_by - NOW).total_seconds()
    assert parts == total
    assert result.minutes * 60 >= total > (result.minutes - 1) * 60
    assert result.ready_at <= result.deliver_by


@given(workloads, st.integers(1, 20), st.floats(1, 10_000))
def test_more_backlog_or_a_longer_ride_never_makes_a_promise_earlier(
    w: dict[str, object], more_tasks: int, more_metres: float
) -> None:
    base = _promise_of(w)
    busier = _promise_of({**w, "open_tasks": w["open_tasks"] + more_tasks})  # type: ignore[operator]
    farther = _promise_of({**w, "distance": w["distance"] + more_metres})  # type: ignore[operator]
    assert base is not None and busier is not None and farther is not None
    assert busier.deliver_by > base.deliver_by
    assert farther.deliver_by >= base.deliver_by


# --- SLA -------------------------------------------------------------------------------------


def test_pick_is_due_before_the_ready_time_and_pack_at_it() -> None:
    result = promise(store(), [SALMON, MILK])
    created = NOW + timedelta(seconds=5)
    assert sla_deadline(TaskKind.PICK, created, result) == result.ready_at - PACK_ALLOWANCE
    assert sla_deadline(TaskKind.PACK, created, result) == result.ready_at


def test_a_courier_is_due_at_the_door_by_the_promise_and_a_pickup_waits_three_days() -> None:
    result = promise(store(), [SALMON])
    assert sla_deadline(TaskKind.COURIER, NOW, result) == result.deliver_by
    assert sla_deadline(TaskKind.PICKUP, NOW, result) == result.ready_at + timedelta(days=3)


def test_a_tiny_order_must_still_be_picked_no_earlier_than_work_starts() -> None:
    quick = store(
        open_tasks=0,
        settings=PromiseSettings(pick_pack_seconds_per_order=30, pick_pack_seconds_per_line=0),
    )
    result = promise(quick, [SALMON], fulfillment_type=FulfillmentType.PICKUP)
    assert sla_deadline(TaskKind.PICK, NOW, result) == result.starts_at


def test_a_task_without_a_promise_is_due_a_fixed_time_after_it_was_created() -> None:
    assert sla_deadline(TaskKind.PICK, NOW, None) == NOW + timedelta(minutes=20)
    assert sla_deadline(TaskKind.PICKUP, NOW, None) == NOW + PICKUP_HOLD


def test_an_sla_is_breached_only_once_the_clock_passes_the_deadline() -> None:
    deadline = NOW + timedelta(minutes=10)
    assert not sla_breached(deadline, NOW)
    assert not sla_breached(deadline, deadline)
    assert sla_breached(deadline, deadline + timedelta(seconds=1))
    naive_from_the_database = deadline.replace(tzinfo=None)
    assert sla_breached(naive_from_the_database, deadline + timedelta(seconds=1))
