"""The promise clock records an order not delivered, or not ready to collect, by the moment its
checkout promised, once, with a ``fulfillment.promise_missed`` event under its store: still in
the store or still on its way. An order delivered or made ready in time, not yet paid, or
cancelled is not late."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.fulfillment.couriers_at_work import (
    fleet_of,
    forward,
    moment,
    on_the_road,
    packed_and_booked,
    store_events,
)
from tests.orders.conftest import NEARBY, Chain, ok, paid_pickup, place, quote, store_step
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.core.jobs import run_job_once
from zhongtai.fulfillment import promise_clock as promise_clock_module
from zhongtai.fulfillment.models import MissedPromise
from zhongtai.fulfillment.promise_clock import flag_missed_promises, promise_clock
from zhongtai.integrations.providers import Providers

SECOND = timedelta(seconds=1)


def _promised(order: Any) -> datetime:
    return moment(order["promised_by"])


def _missed(session: Session, order: Any) -> list[dict[str, Any]]:
    return store_events(session, order, "fulfillment.promise_missed")


def test_a_parcel_still_on_its_way_past_its_promise_is_recorded_once_under_its_store(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, _ = on_the_road(client, chain, providers, steps=3)  # picked up
    promised = _promised(order)

    assert flag_missed_promises(session, now=promised) == 0  # on the dot is in time
    assert flag_missed_promises(session, now=promised + SECOND) == 1
    assert flag_missed_promises(session, now=promised + timedelta(hours=1)) == 0

    [event] = _missed(session, order)
    assert event["order_status"] == "out_for_delivery"
    assert event["fulfillment_type"] == "delivery"
    assert moment(event["promised_by"]) == promised
    row = session.get(MissedPromise, uuid.UUID(order["id"]))
    assert row is not None and moment(row.detected_at) == promised + SECOND
    assert str(row.store_id) == order["store_id"]


def test_a_packed_order_whose_rider_never_came_is_late_too(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, _ = packed_and_booked(client, chain, providers)

    assert flag_missed_promises(session, now=_promised(order) + SECOND) == 1
    assert [e["order_status"] for e in _missed(session, order)] == ["packed"]


def test_an_order_delivered_in_time_is_not_late(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, _ = on_the_road(client, chain, providers, steps=4)  # delivered

    assert flag_missed_promises(session, now=_promised(order) + timedelta(hours=2)) == 0
    assert _missed(session, order) == []


def test_an_unpaid_or_cancelled_order_is_not_the_stores_to_keep(
    client: TestClient, chain: Chain, session: Session
) -> None:
    def placed() -> Any:
        q = quote(
            client,
            chain.app,
            {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)},
        )
        return place(client, chain.app, q["id"])

    unpaid, cancelled = placed(), placed()
    ok(
        client.post(
            f"/api/v1/orders/{cancelled['id']}/cancel",
            json={"reason": "changed my mind"},
            headers=chain.app,
        )
    )

    later = max(_promised(unpaid), _promised(cancelled)) + timedelta(hours=1)
    assert flag_missed_promises(session, now=later) == 0
    assert _missed(session, unpaid) == _missed(session, cancelled) == []


def test_a_pickup_packed_but_never_marked_ready_by_its_ready_time_is_late(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = paid_pickup(client, chain, providers, 1)
    for step in ("accept", "start-picking", "pack"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    ready_at = moment(order["promised_ready_at"])
    assert _promised(order) == ready_at  # a pickup's promise is the moment it is ready

    assert flag_missed_promises(session, now=ready_at) == 0
    assert flag_missed_promises(session, now=ready_at + SECOND) == 1
    [event] = _missed(session, order)
    assert (event["fulfillment_type"], event["order_status"]) == ("pickup", "packed")


def test_a_pickup_ready_in_time_is_not_late_however_long_she_takes_to_come(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = paid_pickup(client, chain, providers, 1)
    for step in ("accept", "start-picking", "pack", "ready"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)

    assert flag_missed_promises(session, now=_promised(order) + timedelta(hours=5)) == 0
    assert _missed(session, order) == []


def test_a_try_on_booking_the_store_never_took_up_is_late_though_nothing_was_paid(
    client: TestClient, chain: Chain, session: Session
) -> None:
    booked = {"fulfillment_type": "reserve_try", "store_id": str(chain.store.id)}
    order = place(
        client, chain.app, quote(client, chain.app, booked | {"lines": chain.basket(1)})["id"]
    )

    assert flag_missed_promises(session, now=_promised(order) + SECOND) == 1
    [event] = _missed(session, order)
    assert (event["fulfillment_type"], event["order_status"]) == ("reserve_try", "created")


def _late(client: TestClient, chain: Chain, headers: Any = None, **query: Any) -> Any:
    return client.get(
        f"/api/v1/fulfillment/stores/{chain.store.id}/missed-promises",
        params=query,
        headers=headers or chain.clerk,
    )


def test_the_store_sees_its_missed_promises_in_its_queue_and_list_with_where_each_stands_now(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    found = _promised(order) + SECOND
    assert flag_missed_promises(session, now=found) == 1
    session.commit()

    queue_url = f"/api/v1/fulfillment/stores/{chain.store.id}/queue"
    queue = ok(client.get(queue_url, headers=chain.clerk))
    assert [x["promise_missed"] for x in queue if x["order"]["id"] == order["id"]] == [True]
    for _ in range(4):  # the rider comes after all, and delivers
        fleet_of(providers).advance(booked["courier_ref"])
    forward(client, providers, booked["courier_ref"], 1, 2, 3, 4)

    page = ok(_late(client, chain))
    [late] = page["items"]
    assert late["order_id"] == order["id"] and late["order_number"] == order["number"]
    assert (late["status_when_found"], late["status_now"]) == ("packed", "completed")
    assert moment(late["promised_by"]) == _promised(order)
    assert moment(late["detected_at"]) == found
    assert page["next_cursor"] is None
    assert ok(_late(client, chain, since=(found + SECOND).isoformat()))["items"] == []


def test_missed_promises_are_the_stores_own_and_since_needs_its_offset(
    client: TestClient, chain: Chain
) -> None:
    elsewhere = chain.factory.staff_headers(Role.STORE_STAFF, [chain.open_store()])
    assert _late(client, chain, elsewhere).status_code == 403
    refused = _late(client, chain, since="2026-11-28T10:00:00")
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["query.since"]


def test_hq_lists_every_stores_missed_promises_and_a_manager_hers(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, _ = packed_and_booked(client, chain, providers)
    assert flag_missed_promises(session, now=_promised(order) + SECOND) == 1
    session.commit()
    url = "/api/v1/fulfillment/missed-promises"

    hq = chain.factory.staff_headers(Role.ANALYST)
    [late] = ok(client.get(url, headers=hq))["items"]
    assert (late["order_id"], late["store_id"]) == (order["id"], str(chain.store.id))
    elsewhere = chain.open_store()
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [elsewhere])
    assert ok(client.get(url, headers=manager))["items"] == []
    asked = client.get(url, params={"store_id": str(chain.store.id)}, headers=manager)
    assert asked.status_code == 403
    assert client.get(url, headers=chain.clerk).status_code == 403


def test_the_clock_records_a_backlog_in_short_transactions_until_none_is_left(
    client: TestClient, chain: Chain, providers: Providers, session: Session, test_db: Database
) -> None:
    orders = [packed_and_booked(client, chain, providers)[0] for _ in range(3)]
    session.commit()
    job = promise_clock(30)
    assert job.chunk == promise_clock_module.BATCH
    short = dataclasses.replace(
        job, run=functools.partial(flag_missed_promises, batch=2, now=_latest(orders)), chunk=2
    )
    assert run_job_once(test_db, short) == 3  # 2, then 1 (short: the run ends)
    assert all(len(_missed(session, order)) == 1 for order in orders)


def _latest(orders: list[Any]) -> datetime:
    return max(_promised(order) for order in orders) + SECOND


def test_a_promise_missed_longer_ago_than_the_clock_looks_back_is_old_news(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, _ = packed_and_booked(client, chain, providers)
    long_after = _promised(order) + promise_clock_module.LOOKBACK + SECOND

    assert flag_missed_promises(session, now=long_after) == 0
    assert flag_missed_promises(session, now=long_after - 2 * SECOND) == 1
