"""The courier watch asks the platform after a booked rider's job that has gone quiet: it catches
up on a step whose callback never came, and books a rider again in place of a job the platform
dropped without a word back; a job still on is left to its callbacks, and asked after again
only once it has been quiet again."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.fulfillment.couriers_at_work import (
    book_rider,
    courier_events,
    dispatch_row,
    fleet_of,
    forward,
    moment,
    on_the_road,
    packed_and_booked,
    store_events,
)
from tests.orders.conftest import Chain, ok
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.jobs import run_job_once
from zhongtai.fulfillment.courier_watch import courier_watch, look_after_a_quiet_job
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus
from zhongtai.integrations.providers import Providers

QUIET = timedelta(minutes=10)


def _quiet(session: Session, courier_ref: str, minutes: float = 11) -> None:
    """Nothing has been heard of the job, nor has anyone looked, for ``minutes``."""
    row = dispatch_row(session, courier_ref)
    row.updated_at = utcnow() - timedelta(minutes=minutes)
    session.flush()


def _watch(session: Session, providers: Providers) -> int:
    return look_after_a_quiet_job(session, couriers=providers, quiet_for=QUIET)


def _dispatches(session: Session, order: Any) -> list[CourierDispatch]:
    return list(
        session.scalars(
            select(CourierDispatch)
            .where(CourierDispatch.order_id == uuid.UUID(order["id"]))
            .order_by(CourierDispatch.created_at, CourierDispatch.id)
            .execution_options(populate_existing=True)
        )
    )


def _lost_jobs(session: Session, order: Any) -> list[dict[str, Any]]:
    return store_events(session, order, "fulfillment.courier_job_lost")


def test_a_quiet_job_the_platform_dropped_ends_and_a_rider_is_booked_again_calling_back_alike(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    fleet_of(providers).cancel(booked["courier_ref"])  # the platform ends it, saying nothing
    _quiet(session, booked["courier_ref"])

    assert _watch(session, providers) == 1

    lost, rebooked = _dispatches(session, order)
    assert (lost.courier_ref, lost.status) == (booked["courier_ref"], DispatchStatus.CANCELLED)
    assert rebooked.status is DispatchStatus.REQUESTED
    assert rebooked.courier_ref not in (None, booked["courier_ref"])
    assert rebooked.callback_url == lost.callback_url is not None
    [event] = _lost_jobs(session, order)
    assert event["dispatch_id"] == str(lost.id)
    assert event["rebooked_dispatch_id"] == str(rebooked.id)
    assert event["courier_ref"] == booked["courier_ref"]
    # The new rider's callbacks come where the first's would have, and are applied.
    assert rebooked.courier_ref is not None
    fleet_of(providers).advance(rebooked.courier_ref)
    forward(client, providers, rebooked.courier_ref, 1)
    assert dispatch_row(session, rebooked.courier_ref).status is DispatchStatus.ASSIGNED
    # The store sees the rider under way, not a second booking.
    assert book_rider(client, chain, order)["courier_ref"] == rebooked.courier_ref
    assert _watch(session, providers) == 0


def test_a_quiet_job_still_on_is_left_to_its_callbacks_and_asked_after_once_per_quiet_spell(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    _quiet(session, booked["courier_ref"])

    assert _watch(session, providers) == 1
    row = dispatch_row(session, booked["courier_ref"])
    assert row.status is DispatchStatus.REQUESTED and row.checked_at is not None
    assert _watch(session, providers) == 0  # looked at just now: not quiet any more
    assert len(_dispatches(session, order)) == 1 and _lost_jobs(session, order) == []


def test_a_job_heard_of_within_the_quiet_spell_is_not_asked_after(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    _, booked = packed_and_booked(client, chain, providers)
    fleet_of(providers).cancel(booked["courier_ref"])
    _quiet(session, booked["courier_ref"], minutes=9)

    assert _watch(session, providers) == 0
    assert dispatch_row(session, booked["courier_ref"]).status is DispatchStatus.REQUESTED


def _order(client: TestClient, chain: Chain, order: Any) -> Any:
    return ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))


def test_a_delivered_callback_that_never_came_completes_the_order_at_the_platforms_moment(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, ref = on_the_road(client, chain, providers, steps=4, heard=3)
    fleet = fleet_of(providers)
    _quiet(session, ref, minutes=60)

    assert _watch(session, providers) == 1

    row = dispatch_row(session, ref)
    assert (row.status, row.last_sequence) == (DispatchStatus.DELIVERED, 4)
    delivered = fleet.job(ref).last_update
    assert moment(row.delivered_at) == moment(delivered.occurred_at)
    done = _order(client, chain, order)
    assert done["status"] == "completed"
    assert [e["status"] for e in courier_events(session, order["id"])] == [
        "assigned",
        "arrived_at_store",
        "picked_up",
        "delivered",
    ]
    # The callback, if it ever comes, is stale: acknowledged, nothing recorded twice.
    forward(client, providers, ref, 4)
    assert len(courier_events(session, order["id"])) == 4
    assert _watch(session, providers) == 0  # ended: not watched any more


def test_a_picked_up_callback_that_never_came_sends_the_order_out(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, ref = on_the_road(client, chain, providers, steps=3, heard=2)
    fleet = fleet_of(providers)
    _quiet(session, ref)

    assert _watch(session, providers) == 1

    row = dispatch_row(session, ref)
    assert (row.status, row.last_sequence) == (DispatchStatus.PICKED_UP, 3)
    assert _order(client, chain, order)["status"] == "out_for_delivery"
    forward(client, providers, ref, 3)  # late and stale
    fleet.advance(ref)
    forward(client, providers, ref, 4)  # the journey goes on by its callbacks
    assert _order(client, chain, order)["status"] == "completed"
    assert _lost_jobs(session, order) == []


def test_a_failed_delivery_whose_callback_never_came_is_caught_up(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, ref = on_the_road(client, chain, providers, steps=3, heard=3, failed=True)
    _quiet(session, ref, minutes=30)

    assert _watch(session, providers) == 1

    assert dispatch_row(session, ref).status is DispatchStatus.FAILED
    assert courier_events(session, order["id"])[-1]["status"] == "failed"


def test_a_rider_on_her_way_with_the_parcel_is_left_to_her_callbacks(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, ref = on_the_road(client, chain, providers, steps=3, heard=3)
    _quiet(session, ref, minutes=60)

    assert _watch(session, providers) == 1
    row = dispatch_row(session, ref)
    assert row.status is DispatchStatus.PICKED_UP and row.checked_at is not None
    assert _watch(session, providers) == 0  # looked at just now
    assert _order(client, chain, order)["status"] == "out_for_delivery"
    assert len(courier_events(session, order["id"])) == 3


def test_a_job_the_platform_forgot_after_pickup_is_told_to_the_store_once_not_booked_again(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    order, ref = on_the_road(client, chain, providers, steps=3, heard=3)
    fleet = fleet_of(providers)
    job = fleet.job
    monkeypatch.setattr(fleet, "job", lambda courier_ref: None)
    _quiet(session, ref, minutes=60)

    with caplog.at_level(logging.WARNING):
        assert _watch(session, providers) == 1
    assert "courier.job_gone_with_parcel" in caplog.text
    [row] = _dispatches(session, order)
    assert row.status is DispatchStatus.PICKED_UP and row.checked_at is not None
    assert row.parcel_unaccounted_at is not None
    assert _lost_jobs(session, order) == []
    assert _order(client, chain, order)["status"] == "out_for_delivery"
    [told] = store_events(session, order, "fulfillment.parcel_unaccounted")
    assert (told["dispatch_id"], told["courier_ref"]) == (str(row.id), ref)

    _quiet(session, ref, minutes=60)  # another quiet spell: asked again, not told again
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert _watch(session, providers) == 1
    assert "courier.job_gone_with_parcel" not in caplog.text
    assert len(store_events(session, order, "fulfillment.parcel_unaccounted")) == 1

    monkeypatch.setattr(fleet, "job", job)  # the platform finds it, and the rider delivers
    fleet.advance(ref)
    forward(client, providers, ref, 4)
    assert _order(client, chain, order)["status"] == "completed"


def test_a_step_the_database_would_not_take_is_logged_and_the_watch_goes_on(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    order, ref = on_the_road(client, chain, providers, steps=4, heard=3)
    fleet = fleet_of(providers)
    job = fleet.job(ref)
    assert job.last_update is not None
    # A platform whose status answer has lost its time zone.
    naive = dataclasses.replace(
        job.last_update, occurred_at=job.last_update.occurred_at.replace(tzinfo=None)
    )
    monkeypatch.setattr(
        fleet, "job", lambda courier_ref: dataclasses.replace(job, last_update=naive)
    )
    _quiet(session, ref, minutes=60)

    with caplog.at_level(logging.WARNING):
        assert _watch(session, providers) == 1

    assert "courier.catch_up_failed" in caplog.text
    row = dispatch_row(session, ref)
    assert (row.status, row.last_sequence) == (DispatchStatus.PICKED_UP, 3)
    assert row.checked_at is not None
    assert _watch(session, providers) == 0
    assert _order(client, chain, order)["status"] == "out_for_delivery"


def test_a_platform_that_cannot_be_reached_is_asked_again_after_another_quiet_spell(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    _quiet(session, booked["courier_ref"])

    def unreachable(courier_ref: str) -> None:
        raise httpx.ConnectError("platform unreachable")

    monkeypatch.setattr(fleet_of(providers), "job", unreachable)
    assert _watch(session, providers) == 1
    row = dispatch_row(session, booked["courier_ref"])
    assert row.status is DispatchStatus.REQUESTED and row.checked_at is not None
    assert _watch(session, providers) == 0
    assert _lost_jobs(session, order) == []


def test_a_lost_job_the_platform_will_not_book_again_is_left_for_the_store_to_book(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    fleet = fleet_of(providers)
    fleet.cancel(booked["courier_ref"])
    _quiet(session, booked["courier_ref"])
    book = fleet.dispatch

    def no_riders(request: Any) -> Any:
        raise httpx.ReadTimeout("no answer")

    monkeypatch.setattr(fleet, "dispatch", no_riders)
    assert _watch(session, providers) == 1

    [lost] = _dispatches(session, order)
    assert lost.status is DispatchStatus.CANCELLED
    [event] = _lost_jobs(session, order)
    assert event["rebooked_dispatch_id"] is None
    monkeypatch.setattr(fleet, "dispatch", book)
    again = book_rider(client, chain, order)
    assert again["status"] == "requested" and again["courier_ref"] != booked["courier_ref"]
    order_now = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert order_now["status"] == "packed"


def test_a_lost_job_booked_before_its_callback_address_was_kept_is_left_for_the_store(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    fleet_of(providers).cancel(booked["courier_ref"])
    dispatch_row(session, booked["courier_ref"]).callback_url = None
    _quiet(session, booked["courier_ref"])

    assert _watch(session, providers) == 1
    [lost] = _dispatches(session, order)
    assert lost.status is DispatchStatus.CANCELLED
    assert [e["rebooked_dispatch_id"] for e in _lost_jobs(session, order)] == [None]


def test_the_watch_job_looks_after_every_quiet_job_in_one_run(
    client: TestClient, chain: Chain, providers: Providers, session: Session, test_db: Database
) -> None:
    first, booked_first = packed_and_booked(client, chain, providers)
    second, booked_second = packed_and_booked(client, chain, providers)
    fleet_of(providers).cancel(booked_first["courier_ref"])
    _quiet(session, booked_first["courier_ref"], minutes=12)
    _quiet(session, booked_second["courier_ref"], minutes=11)
    session.commit()

    job = courier_watch(30, providers, quiet_minutes=10)
    assert run_job_once(test_db, job) == 2  # then a third call finds none and ends the run
    assert [d.status for d in _dispatches(session, first)] == [
        DispatchStatus.CANCELLED,
        DispatchStatus.REQUESTED,
    ]
    assert [d.status for d in _dispatches(session, second)] == [DispatchStatus.REQUESTED]
    assert courier_watch(30, providers, quiet_minutes=0).every_seconds == 0
