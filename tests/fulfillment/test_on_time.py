"""The on-time rate per store and fulfilment type: a delivery is kept when it reached the
customer by its promise, a pickup when it was ready by then; cancelled and unpaid orders, and
promises not yet due, are not counted. Store managers see their stores, HQ the chain."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.fulfillment.couriers_at_work import moment, on_the_road
from tests.orders.conftest import (
    NEARBY,
    Chain,
    ok,
    paid_pickup,
    pay_by_wallet,
    place,
    quote,
    store_step,
)
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.fulfillment.on_time import OnTime, on_time, together
from zhongtai.fulfillment.parcel_receipts import confirm_unconfirmed_parcels
from zhongtai.integrations.providers import Providers
from zhongtai.orders.kinds import FulfillmentType
from zhongtai.orders.models import Order
from zhongtai.orders.settings import order_settings

REPORT = "/api/v1/fulfillment/on-time"
DAY = timedelta(days=1)


def _promise_moved_back(session: Session, order: Any, by: timedelta) -> None:
    """The order was promised ``by`` earlier than it was (it is late before it is done)."""
    row = session.get(Order, uuid.UUID(order["id"]), populate_existing=True)
    assert row is not None and row.promised_by is not None and row.promised_ready_at is not None
    row.promised_by -= by
    row.promised_ready_at -= by
    session.commit()


def _ready(client: TestClient, chain: Chain, order: Any) -> None:
    for step in ("accept", "start-picking", "pack", "ready"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)


def _report(session: Session, **kw: Any) -> dict[FulfillmentType | None, tuple[int, int]]:
    now = utcnow()
    rows = on_time(session, since=now - DAY, until=now + DAY, now=now + DAY, **kw)
    return {row.fulfillment_type: (row.promised, row.kept) for row in rows}


def test_deliveries_and_pickups_kept_or_not_by_their_promise(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    on_the_road(client, chain, providers, steps=4)  # delivered in time
    _late, _ = on_the_road(client, chain, providers, steps=3)  # picked up, not yet delivered
    ready_in_time = paid_pickup(client, chain, providers, 1)
    _ready(client, chain, ready_in_time)
    ready_late = paid_pickup(client, chain, providers, 1)
    _promise_moved_back(session, ready_late, timedelta(hours=1))
    _ready(client, chain, ready_late)

    assert _report(session) == {FulfillmentType.DELIVERY: (2, 1), FulfillmentType.PICKUP: (2, 1)}


def test_a_delivery_completed_after_its_promise_is_late(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, _ = on_the_road(client, chain, providers, steps=2)
    _promise_moved_back(session, order, timedelta(hours=2))
    on_the_road(client, chain, providers, steps=4)

    assert _report(session) == {FulfillmentType.DELIVERY: (2, 1)}


def test_cancelled_and_unpaid_orders_are_not_counted(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    body = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)}
    place(client, chain.app, quote(client, chain.app, body)["id"])  # never paid
    cancelled = paid_pickup(client, chain, providers, 1)
    ok(
        client.post(
            f"/api/v1/orders/{cancelled['id']}/cancel", json={"reason": "x"}, headers=chain.app
        )
    )

    assert _report(session) == {}


def test_a_promise_counts_once_kept_or_else_once_due(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    waiting = paid_pickup(client, chain, providers, 1)  # paid, not ready yet
    kept_early = paid_pickup(client, chain, providers, 1)
    _ready(client, chain, kept_early)
    now = utcnow()

    [row] = on_time(session, since=now - DAY, until=now + DAY, now=now)
    assert (row.promised, row.kept) == (1, 1)  # the one ready ahead of its promise
    due = moment(waiting["promised_by"]) + timedelta(seconds=1)
    [row] = on_time(session, since=now - DAY, until=now + DAY, now=due)
    assert (row.promised, row.kept) == (2, 1)


def test_a_try_on_booking_is_promised_from_the_booking_though_nothing_is_paid(
    client: TestClient, chain: Chain, session: Session
) -> None:
    booked = {"fulfillment_type": "reserve_try", "store_id": str(chain.store.id)}
    place(client, chain.app, quote(client, chain.app, booked | {"lines": chain.basket(1)})["id"])

    assert _report(session) == {FulfillmentType.RESERVE_TRY: (1, 0)}


def test_the_stores_together_and_a_rate_of_nothing_due() -> None:
    store = uuid.uuid4()
    rows = [
        OnTime(store, FulfillmentType.DELIVERY, 4, 3),
        OnTime(store, FulfillmentType.PICKUP, 1, 1),
    ]
    total = together(rows)
    assert (total.promised, total.kept, total.late, total.rate) == (5, 4, 1, 0.8)
    assert together([]).rate is None


def _api(client: TestClient, headers: Any, since: datetime, until: datetime, **kw: Any) -> Any:
    params = {"since": since.isoformat(), "until": until.isoformat(), **kw}
    return client.get(REPORT, params=params, headers=headers)


def test_hq_reads_each_stores_rate_and_the_total(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, _ = on_the_road(client, chain, providers, steps=4)
    promised = moment(order["promised_by"])
    hq = chain.factory.staff_headers(Role.ANALYST)

    report = ok(_api(client, hq, promised - DAY, promised + timedelta(seconds=1)))
    [row] = report["rows"]
    assert row["store_id"] == str(chain.store.id) and row["fulfillment_type"] == "delivery"
    assert (row["promised"], row["kept"], row["late"], row["on_time_rate"]) == (1, 1, 0, 1.0)
    assert report["total"] == {
        "store_id": None,
        "fulfillment_type": None,
        "promised": 1,
        "kept": 1,
        "late": 0,
        "on_time_rate": 1.0,
    }


def test_a_store_manager_reads_her_stores_and_not_another(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order, _ = on_the_road(client, chain, providers, steps=4)
    promised = moment(order["promised_by"])
    since, until = promised - DAY, promised + timedelta(seconds=1)
    elsewhere = chain.open_store()
    manager = chain.factory.staff_headers(Role.STORE_MANAGER, [elsewhere])

    mine = ok(_api(client, manager, since, until))
    assert mine["rows"] == [] and mine["total"]["on_time_rate"] is None
    refused = _api(client, manager, since, until, store_id=str(chain.store.id))
    assert refused.status_code == 403
    clerk = _api(client, chain.clerk, since, until)
    assert clerk.status_code == 403  # store staff work the queue; the rate is the manager's


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        ("2026-11-01T00:00:00", "2026-11-02T00:00:00+08:00", "since"),
        ("2026-11-02T00:00:00+08:00", "2026-11-01T00:00:00+08:00", "until"),
        ("2025-01-01T00:00:00+08:00", "2026-11-01T00:00:00+08:00", "until"),
    ],
)
def test_a_period_without_offsets_backwards_or_over_a_year_is_refused_naming_the_field(
    client: TestClient, chain: Chain, since: str, until: str, field: str
) -> None:
    hq = chain.factory.staff_headers(Role.ANALYST)
    refused = client.get(REPORT, params={"since": since, "until": until}, headers=hq)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == [f"query.{field}"]


def test_a_parcel_confirmed_by_the_platform_days_later_is_left_out_its_arrival_unknown(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    body = {"fulfillment_type": "ship", "address": NEARBY, "lines": chain.basket(1)}
    order = place(client, chain.app, quote(client, chain.app, body)["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    for step in ("accept", "start-picking", "pack"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    store_step(client, chain.clerk, order["id"], "ship", {"carrier": "SF", "tracking_number": "1"})
    later = utcnow() + timedelta(days=order_settings().parcel_confirm_days, hours=1)
    assert confirm_unconfirmed_parcels(session, now=later) == 1
    session.commit()

    since = moment(order["promised_by"]) - DAY
    assert on_time(session, since=since, until=later, now=later) == []
