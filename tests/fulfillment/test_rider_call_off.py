"""A store calls off the rider booked for a packed delivery order without cancelling the order
(the rider is late, the platform slow to find one), and books again, perhaps on another
platform; once the rider has the parcel it is too late."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.fulfillment.couriers_at_work import (
    book_rider,
    dispatch_row,
    fleet_of,
    forward,
    on_the_road,
    packed_and_booked,
    post,
    rewritten,
)
from tests.orders.conftest import Chain, ok
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from tests.orders.test_delivery_journey import _packed_delivery
from zhongtai.fulfillment.models import DispatchStatus
from zhongtai.integrations.providers import Providers


def _call_off(client: TestClient, chain: Chain, order: Any) -> Any:
    url = f"/api/v1/fulfillment/orders/{order['id']}/dispatch/call-off"
    return client.post(url, headers=chain.clerk)


def _order(client: TestClient, chain: Chain, order: Any) -> Any:
    return ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))


def test_a_store_calls_off_a_late_rider_and_books_another_while_the_order_stays_packed(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    fleet_of(providers).advance(booked["courier_ref"])
    forward(client, providers, booked["courier_ref"], 1)  # a rider took the job, then dawdled

    called_off = ok(_call_off(client, chain, order))
    assert (called_off["id"], called_off["status"]) == (booked["id"], "cancelled")
    assert fleet_of(providers).job(booked["courier_ref"]).cancelled
    assert _order(client, chain, order)["status"] == "packed"

    again = book_rider(client, chain, order)
    assert again["status"] == "requested" and again["courier_ref"] != booked["courier_ref"]
    fleet_of(providers).advance(again["courier_ref"])
    forward(client, providers, again["courier_ref"], 1)
    assert dispatch_row(session, again["courier_ref"]).status is DispatchStatus.ASSIGNED
    # A late word from the rider called off, before any parcel, changes nothing.
    late = rewritten(providers, booked["courier_ref"], 1, sequence=2, status="arrived_at_store")
    assert post(client, late) == 204
    assert dispatch_row(session, booked["courier_ref"]).status is DispatchStatus.CANCELLED
    assert dispatch_row(session, again["courier_ref"]).status is DispatchStatus.ASSIGNED


def test_a_rider_who_has_the_parcel_cannot_be_called_off(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, ref = on_the_road(client, chain, providers, steps=3)  # picked up

    refused = _call_off(client, chain, order)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "picked order" in refused.json()["detail"]
    assert dispatch_row(session, ref).status is DispatchStatus.PICKED_UP
    assert _order(client, chain, order)["status"] == "out_for_delivery"


def test_calling_off_with_no_rider_booked_is_a_409_that_changes_nothing(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _, order = _packed_delivery(client, chain, providers, 1)
    refused = _call_off(client, chain, order)
    assert refused.status_code == 409
    assert "no rider booked" in refused.json()["detail"]
    assert _order(client, chain, order)["status"] == "packed"

    booked = book_rider(client, chain, order)
    assert ok(_call_off(client, chain, order))["status"] == "cancelled"
    assert _call_off(client, chain, order).status_code == 409  # called off already
    assert book_rider(client, chain, order)["courier_ref"] != booked["courier_ref"]


def test_a_rider_called_off_who_collects_the_parcel_anyway_sends_it_out_and_the_next_is_called_off(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, first = packed_and_booked(client, chain, providers)
    fleet_of(providers).advance(first["courier_ref"])
    forward(client, providers, first["courier_ref"], 1)
    ok(_call_off(client, chain, order))
    second = book_rider(client, chain, order)

    # The platform took the call-off, yet its rider collected the parcel all the same.
    collected = rewritten(providers, first["courier_ref"], 1, sequence=2, status="picked_up")
    assert post(client, collected) == 204

    assert _order(client, chain, order)["status"] == "out_for_delivery"
    assert dispatch_row(session, first["courier_ref"]).status is DispatchStatus.PICKED_UP
    # No second rider rides out for a parcel that left: hers is called off at her platform.
    assert dispatch_row(session, second["courier_ref"]).status is DispatchStatus.CANCELLED
    assert fleet_of(providers).job(second["courier_ref"]).cancelled
