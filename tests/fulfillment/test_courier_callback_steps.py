"""A rider's status callback applies only when it is newer than the last one applied *and* a step
forward of where the dispatch is: one that is not -- an earlier step, or anything after the
delivery ended -- is a stale callback: acknowledged (204, or the platform retries it forever),
and it changes nothing: not the dispatch, not the order, not the stock, no event."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.fulfillment.couriers_at_work import (
    book_rider,
    courier_events,
    dispatch_row,
    fleet_of,
    forward,
    packed_and_booked,
    post,
    rewritten,
)
from tests.orders.conftest import Chain, ok
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.fulfillment.models import DispatchStatus
from zhongtai.integrations.providers import Providers


def _delivered(client: TestClient, chain: Chain, providers: Providers) -> tuple[Any, str]:
    order, booked = packed_and_booked(client, chain, providers)
    ref = booked["courier_ref"]
    for _ in range(4):
        fleet_of(providers).advance(ref)
    forward(client, providers, ref, 1, 2, 3, 4)
    return order, ref


def test_a_failure_reported_after_the_delivery_leaves_the_order_delivered(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, ref = _delivered(client, chain, providers)
    events = len(courier_events(session, order["id"]))
    # The platform reports the same job failed, numbered after the delivery.
    failed = rewritten(providers, ref, 4, sequence=5, status="failed")
    assert post(client, failed) == 204

    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert (tracking["status"], tracking["courier"]["status"]) == ("completed", "delivered")
    dispatch = dispatch_row(session, ref)
    assert (dispatch.status, dispatch.last_sequence) == (DispatchStatus.DELIVERED, 4)
    assert len(courier_events(session, order["id"])) == events


def test_a_pickup_numbered_after_the_delivery_is_acknowledged_and_changes_nothing(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, ref = _delivered(client, chain, providers)
    events = len(courier_events(session, order["id"]))
    picked_up_again = rewritten(providers, ref, 3, sequence=5)
    assert post(client, picked_up_again) == 204  # not a 409 the platform would retry forever

    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert (tracking["status"], tracking["courier"]["status"]) == ("completed", "delivered")
    assert dispatch_row(session, ref).last_sequence == 4
    assert len(courier_events(session, order["id"])) == events
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert balance is not None and balance.on_hand == 8  # shipped once


def test_a_late_pickup_of_a_failed_rider_job_does_not_send_out_the_order_rebooked_meanwhile(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, first = packed_and_booked(client, chain, providers)
    old = first["courier_ref"]
    fleet_of(providers).advance(old)  # a rider accepted the job ...
    fleet_of(providers).fail(old, "rider had an accident")  # ... and dropped it
    forward(client, providers, old, 1, 2)
    second = book_rider(client, chain, order)  # the parcel is still in the store: rebook
    assert second["courier_ref"] != old
    events = len(courier_events(session, order["id"]))

    # The old job's platform says its rider collected the parcel after all.
    assert post(client, rewritten(providers, old, 1, sequence=3, status="picked_up")) == 204

    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert (tracking["status"], tracking["courier"]["status"]) == ("packed", "requested")
    assert dispatch_row(session, old).status is DispatchStatus.FAILED
    assert dispatch_row(session, second["courier_ref"]).status is DispatchStatus.REQUESTED
    balance = chain.stock.balance(chain.store, chain.skus[0])  # still held for the new rider
    assert balance is not None and (balance.on_hand, balance.reserved) == (10, 2)
    assert len(courier_events(session, order["id"])) == events


def test_an_earlier_step_numbered_later_does_not_move_a_rider_back(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    ref = booked["courier_ref"]
    for _ in range(3):
        fleet_of(providers).advance(ref)
    forward(client, providers, ref, 1, 3)  # assigned, then picked up (arrived is late)
    assert post(client, rewritten(providers, ref, 1, sequence=4)) == 204  # "assigned" once more

    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert (tracking["status"], tracking["courier"]["status"]) == ("out_for_delivery", "picked_up")
    # The genuine delivery still applies afterwards: the stale callback took no sequence.
    fleet_of(providers).advance(ref)
    forward(client, providers, ref, 2, 4)
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert (tracking["status"], tracking["courier"]["status"]) == ("completed", "delivered")
