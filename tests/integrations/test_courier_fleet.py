"""The simulated courier fleet: riders in turn, a timeline from distance, and every status step a
real signed callback that arrives in order, is retried while the store's endpoint is down, and
can be replayed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integrations.receiver import Received, Receiver
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.integrations.couriers import (
    COURIER_JOURNEY,
    CallbackRejected,
    CourierStatus,
    CourierUpdate,
    DispatchRequest,
    GeoPoint,
    SimulatedCourierFleet,
)
from zhongtai.integrations.rules import SIGNATURE_HEADER, signature_header

SECRET = "fleet-secret"
PATH = "/couriers/simulated/callback"
STORE = GeoPoint(31.2304, 121.4737)  # People's Square, Shanghai
NEARBY = GeoPoint(31.2397, 121.4998)  # the Bund side of Lujiazui, about 2.7 km
FARTHER = GeoPoint(31.2000, 121.5500)  # about 8 km


@pytest.fixture
def by_hand() -> Iterator[SimulatedCourierFleet]:
    with SimulatedCourierFleet(
        SECRET, riders=3, auto=False, retry_base_seconds=0.01, retry_cap_seconds=0.05
    ) as fleet:
        yield fleet


def _request(
    receiver: Receiver,
    dropoff: GeoPoint = NEARBY,
    *,
    ready_in: timedelta = timedelta(0),
    dispatch_id: uuid.UUID | None = None,
) -> DispatchRequest:
    return DispatchRequest(
        dispatch_id=dispatch_id or uuid.uuid4(),
        order_id=uuid.uuid4(),
        store_id=uuid.uuid4(),
        pickup=STORE,
        dropoff=dropoff,
        ready_at=utcnow() + ready_in,
        callback_url=receiver.url + PATH,
    )


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _updates(fleet: SimulatedCourierFleet, receiver: Receiver, count: int) -> list[CourierUpdate]:
    _wait_until(lambda: len(receiver.bodies(PATH)) >= count, f"{count} callbacks")
    received = receiver.bodies(PATH)
    assert len(received) == count
    return [fleet.parse_callback(r.headers, r.body) for r in received]


def _the_only_callback(receiver: Receiver) -> list[Received]:
    _wait_until(lambda: len(receiver.bodies(PATH)) == 1, "the callback")
    return receiver.bodies(PATH)


# --- the journey ------------------------------------------------------------------------------


def test_a_dispatched_parcel_moves_through_every_status_in_order_by_itself(
    receiver: Receiver,
) -> None:
    # 6000x: the rider's half hour passes in well under a second
    with SimulatedCourierFleet(SECRET, time_scale=6000) as fleet:
        request = _request(receiver)
        ticket = fleet.dispatch(request)

        updates = _updates(fleet, receiver, 4)

    assert [u.status for u in updates] == list(COURIER_JOURNEY)
    assert [u.sequence for u in updates] == [1, 2, 3, 4]
    assert {(u.courier_ref, u.dispatch_id, u.order_id) for u in updates} == {
        (ticket.courier_ref, request.dispatch_id, request.order_id)
    }
    moments = [u.occurred_at for u in updates]
    assert moments == sorted(moments)


def test_the_ticket_promises_pickup_no_sooner_than_the_parcel_is_ready(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    request = _request(receiver, ready_in=timedelta(minutes=25))

    ticket = by_hand.dispatch(request)

    assert ticket.pickup_at > request.ready_at
    assert ticket.delivered_at > ticket.pickup_at


def test_a_farther_customer_gets_a_longer_ride_and_a_later_delivery(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    near = by_hand.dispatch(_request(receiver, NEARBY))
    far = by_hand.dispatch(_request(receiver, FARTHER))

    assert 3_000 < near.distance_m < 4_000  # 2.7 km as the crow flies, × 1.3 on the roads
    assert far.distance_m > near.distance_m
    assert far.delivered_at - far.pickup_at > near.delivered_at - near.pickup_at


def test_a_customer_beyond_the_fleets_reach_is_refused(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    with pytest.raises(InvalidInput, match="beyond the fleet"):
        by_hand.dispatch(_request(receiver, GeoPoint(31.40, 121.70)))


@settings(max_examples=30, deadline=None)
@given(
    lat=st.floats(min_value=31.15, max_value=31.30),
    lng=st.floats(min_value=121.40, max_value=121.55),
    ready_minutes=st.integers(min_value=0, max_value=120),
)
def test_every_planned_delivery_picks_up_after_ready_and_delivers_after_pickup(
    lat: float, lng: float, ready_minutes: int
) -> None:
    with SimulatedCourierFleet(SECRET, auto=False) as fleet:
        request = DispatchRequest(
            dispatch_id=uuid.uuid4(),
            order_id=uuid.uuid4(),
            store_id=uuid.uuid4(),
            pickup=STORE,
            dropoff=GeoPoint(lat, lng),
            ready_at=utcnow() + timedelta(minutes=ready_minutes),
            callback_url="http://127.0.0.1:9/unused",
        )
        ticket = fleet.dispatch(request)

    assert request.ready_at < ticket.pickup_at < ticket.delivered_at
    ride = ticket.delivered_at - ticket.pickup_at
    assert ride >= timedelta(minutes=ticket.distance_m / 250)


def test_riders_are_assigned_in_turn_and_shown_masked(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    refs = [by_hand.dispatch(_request(receiver)).courier_ref for _ in range(4)]

    riders = [by_hand.advance(ref) for ref in refs]

    phones = [u.rider_phone for u in riders]
    assert phones == ["138****0001", "138****0002", "138****0003", "138****0001"]
    assert all(u.rider_name and u.rider_name.endswith("**") for u in riders)


def test_stepping_by_hand_calls_back_once_per_step_and_stops_at_delivered(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    ref = by_hand.dispatch(_request(receiver)).courier_ref
    assert by_hand.drain(timeout=10)
    assert receiver.bodies(PATH) == []

    taken = [by_hand.advance(ref).status for _ in COURIER_JOURNEY]

    assert taken == list(COURIER_JOURNEY)
    assert [u.status for u in _updates(by_hand, receiver, 4)] == list(COURIER_JOURNEY)
    with pytest.raises(Conflict, match="no next step"):
        by_hand.advance(ref)


def test_dispatching_the_same_dispatch_id_again_books_one_rider(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    request = _request(receiver)

    assert by_hand.dispatch(request) == by_hand.dispatch(request)
    with pytest.raises(Conflict, match="already booked with other details"):
        by_hand.dispatch(_request(receiver, FARTHER, dispatch_id=request.dispatch_id))


def test_a_rider_is_called_off_before_pickup_but_not_after(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    early = by_hand.dispatch(_request(receiver)).courier_ref
    by_hand.advance(early)
    by_hand.cancel(early)
    by_hand.cancel(early)  # a repeat is harmless

    with pytest.raises(Conflict, match="cancelled"):
        by_hand.advance(early)

    late = by_hand.dispatch(_request(receiver)).courier_ref
    for _ in range(3):
        by_hand.advance(late)
    with pytest.raises(Conflict, match="only before picking the parcel up"):
        by_hand.cancel(late)


def test_a_failed_delivery_is_called_back_with_its_reason_and_ends_the_journey(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    ref = by_hand.dispatch(_request(receiver)).courier_ref
    for _ in range(3):
        by_hand.advance(ref)

    by_hand.fail(ref, "customer unreachable")

    last = _updates(by_hand, receiver, 4)[-1]
    assert (last.status, last.failure_reason, last.sequence) == (
        CourierStatus.FAILED,
        "customer unreachable",
        4,
    )
    with pytest.raises(Conflict):
        by_hand.advance(ref)


# --- callbacks: signatures, retries, replays ----------------------------------------------------


def test_a_genuine_callback_is_accepted_and_a_tampered_or_old_one_rejected(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    by_hand.advance(by_hand.dispatch(_request(receiver)).courier_ref)
    (received,) = _the_only_callback(receiver)
    now = int(time.time())

    assert by_hand.parse_callback(received.headers, received.body).sequence == 1
    with pytest.raises(CallbackRejected):
        by_hand.parse_callback(received.headers, received.body.replace(b"assigned", b"delivered"))
    old = {SIGNATURE_HEADER: signature_header(SECRET, now - 3600, received.body)}
    with pytest.raises(CallbackRejected, match="300 s"):
        by_hand.parse_callback(old, received.body)


def test_a_store_endpoint_that_is_down_is_retried_until_it_recovers(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    receiver.failures_left[PATH] = 4

    update = by_hand.advance(by_hand.dispatch(_request(receiver)).courier_ref)

    (arrived,) = _updates(by_hand, receiver, 1)
    assert arrived == update
    assert by_hand.drain(timeout=10)  # the 204 is logged just after the receiver records it
    attempts = [a for a in by_hand.delivery_attempts() if a.event_id == update.event_id]
    assert [a.status_code for a in attempts] == [500, 500, 500, 500, 204]


def test_a_replayed_callback_arrives_again_with_its_old_sequence(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    ref = by_hand.dispatch(_request(receiver)).courier_ref
    by_hand.advance(ref)
    by_hand.advance(ref)
    _wait_until(lambda: len(receiver.bodies(PATH)) == 2, "two callbacks")

    by_hand.resend(ref, 1)

    updates = _updates(by_hand, receiver, 3)
    assert [u.sequence for u in updates] == [1, 2, 1]
    assert updates[2] == updates[0]
    newest = max(updates, key=lambda u: u.sequence)
    assert newest.status is CourierStatus.ARRIVED_AT_STORE


def test_signed_callbacks_are_handed_over_for_forwarding_by_hand(
    by_hand: SimulatedCourierFleet, receiver: Receiver
) -> None:
    ref = by_hand.dispatch(_request(receiver)).courier_ref
    by_hand.advance(ref)

    (signed,) = by_hand.signed_callbacks(ref)

    assert signed.url == receiver.url + PATH
    assert by_hand.parse_callback(signed.headers, signed.body).status is CourierStatus.ASSIGNED
