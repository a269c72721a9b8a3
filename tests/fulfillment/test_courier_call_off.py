"""Calling a rider off reaches the courier platform inside our transaction, so the two sides can
part: the platform cancels the job, our transaction is lost, and our dispatch still looks booked.
Asking again -- booking a rider, cancelling the order -- asks the platform where the job stands:
a job it cancelled, or no longer knows, ends our dispatch too, so every retry converges."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.fulfillment.couriers_at_work import (
    book_rider,
    call_off_lost,
    cancel,
    dispatch_row,
    fleet_of,
    forward,
    packed_and_booked,
)
from tests.orders.conftest import Chain, ok
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.app import create_app
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict, NotFound
from zhongtai.core.settings import Settings
from zhongtai.fulfillment import courier
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus
from zhongtai.integrations.couriers.simulated import SimulatedCourierFleet
from zhongtai.integrations.providers import Providers, provider_secret


def _dispatches(session: Session, order: Any) -> list[tuple[str | None, DispatchStatus]]:
    """The order's dispatches, oldest first: (the platform's reference, status)."""
    rows = session.scalars(
        select(CourierDispatch)
        .where(CourierDispatch.order_id == uuid.UUID(order["id"]))
        .order_by(CourierDispatch.id)
        .execution_options(populate_existing=True)
    ).all()
    return [(row.courier_ref, row.status) for row in rows]


def _assigned_and_called_back(client: TestClient, chain: Chain, providers: Providers) -> Any:
    order, booked = packed_and_booked(client, chain, providers)
    fleet_of(providers).advance(booked["courier_ref"])
    forward(client, providers, booked["courier_ref"], 1)
    return order, booked


def test_a_call_off_the_platform_took_in_a_lost_transaction_lets_the_store_book_a_new_rider(
    client: TestClient, chain: Chain, providers: Providers, session: Session, test_db: Database
) -> None:
    order, booked = _assigned_and_called_back(client, chain, providers)
    call_off_lost(test_db, order, providers)
    # The two sides disagree: the platform called its rider off, our dispatch is still on.
    with pytest.raises(Conflict, match="cancelled"):
        fleet_of(providers).advance(booked["courier_ref"])
    assert dispatch_row(session, booked["courier_ref"]).status is DispatchStatus.ASSIGNED
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == "packed"

    rebooked = book_rider(client, chain, order)
    assert rebooked["courier_ref"] != booked["courier_ref"]
    assert rebooked["status"] == "requested"
    assert _dispatches(session, order) == [
        (booked["courier_ref"], DispatchStatus.CANCELLED),
        (rebooked["courier_ref"], DispatchStatus.REQUESTED),
    ]
    # A rider takes the new job, and asking again answers it rather than booking a third.
    assert book_rider(client, chain, order) == rebooked
    fleet_of(providers).advance(rebooked["courier_ref"])
    forward(client, providers, rebooked["courier_ref"], 1)
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert (tracking["status"], tracking["courier"]["status"]) == ("packed", "assigned")


def test_a_rebooking_whose_transaction_was_lost_books_the_same_rider_when_retried(
    client: TestClient, chain: Chain, providers: Providers, session: Session, test_db: Database
) -> None:
    order, booked = _assigned_and_called_back(client, chain, providers)
    call_off_lost(test_db, order, providers)
    with test_db.writer() as s:  # the new rider is booked; the commit never comes
        lost = courier.dispatch_courier(
            s,
            uuid.UUID(order["id"]),
            courier=fleet_of(providers),
            callback_url="http://testserver/api/v1/couriers/callbacks/simulated",
        )
        lost_ref = lost.courier_ref
        s.rollback()
    assert lost_ref != booked["courier_ref"]

    rebooked = book_rider(client, chain, order)
    # The same booking at the platform (one rider on the way, not two).
    assert rebooked["courier_ref"] == lost_ref
    assert _dispatches(session, order) == [
        (booked["courier_ref"], DispatchStatus.CANCELLED),
        (lost_ref, DispatchStatus.REQUESTED),
    ]


def test_a_cancel_retried_after_its_transaction_was_lost_cancels_and_refunds_once(
    client: TestClient, chain: Chain, providers: Providers, session: Session, test_db: Database
) -> None:
    order, booked = _assigned_and_called_back(client, chain, providers)
    call_off_lost(test_db, order, providers)

    key = str(uuid.uuid4())
    cancelled = ok(cancel(client, chain, order, key))
    assert (cancelled["status"], cancelled["refunded_amount"]) == ("cancelled", order["total"])
    assert ok(cancel(client, chain, order, key)) == cancelled  # the same request again
    again = ok(cancel(client, chain, order))  # and once more without a key
    assert (again["status"], again["refunded_amount"]) == ("cancelled", order["total"])
    refunds = ok(client.get(f"/api/v1/orders/{order['id']}/refunds", headers=chain.app))
    assert [r["amount"] for r in refunds] == [order["total"]]
    assert _dispatches(session, order) == [(booked["courier_ref"], DispatchStatus.CANCELLED)]
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert (balance.on_hand, balance.reserved) == (10, 0)


@pytest.fixture
def forgetful(settings: Settings, providers: Providers) -> Iterator[SimulatedCourierFleet]:
    """The simulated platform restarted: the same secret, none of its jobs (it keeps them in
    memory), as a platform that expired or lost a job answers "no such job"."""
    fleet = SimulatedCourierFleet(provider_secret(settings, "simulated"), auto=False)
    yield fleet
    fleet.close()


@pytest.fixture
def restarted(
    settings: Settings, test_db: Database, providers: Providers, forgetful: SimulatedCourierFleet
) -> Iterator[TestClient]:
    """Our API after the courier platform forgot its jobs (the payment gateway remembers)."""
    app: FastAPI = create_app(
        settings,
        db=test_db,
        providers=Providers(payments=providers.payments, couriers={"simulated": forgetful}),
        desk_db=test_db,
    )
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def test_an_order_whose_rider_job_the_platform_no_longer_knows_can_still_be_cancelled(
    client: TestClient,
    restarted: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
) -> None:
    order, booked = _assigned_and_called_back(client, chain, providers)
    cancelled = ok(cancel(restarted, chain, order))
    assert (cancelled["status"], cancelled["refunded_amount"]) == ("cancelled", order["total"])
    assert _dispatches(session, order) == [(booked["courier_ref"], DispatchStatus.CANCELLED)]


def test_an_order_whose_rider_job_the_platform_no_longer_knows_gets_a_new_rider(
    client: TestClient,
    restarted: TestClient,
    chain: Chain,
    providers: Providers,
    forgetful: SimulatedCourierFleet,
    session: Session,
) -> None:
    order, booked = _assigned_and_called_back(client, chain, providers)
    with pytest.raises(NotFound):
        forgetful.advance(booked["courier_ref"])

    rebooked = book_rider(restarted, chain, order)
    assert rebooked["courier_ref"] != booked["courier_ref"]
    assert forgetful.advance(rebooked["courier_ref"]).status == "assigned"
    assert _dispatches(session, order) == [
        (booked["courier_ref"], DispatchStatus.CANCELLED),
        (rebooked["courier_ref"], DispatchStatus.REQUESTED),
    ]


def test_asking_again_for_a_rider_still_on_the_job_answers_the_same_booking(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = _assigned_and_called_back(client, chain, providers)
    again = book_rider(client, chain, order)
    assert (again["id"], again["courier_ref"]) == (booked["id"], booked["courier_ref"])
    assert again["status"] == "assigned"
    assert _dispatches(session, order) == [(booked["courier_ref"], DispatchStatus.ASSIGNED)]
