"""Parcels nobody confirmed delivered are confirmed received by `serve` ``parcel_confirm_days``
after shipping: the order completes once, with a note on its timeline saying so. A parcel the
store confirmed, or one shipped more recently, is left alone."""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.fulfillment.couriers_at_work import on_the_road, store_events
from tests.orders.conftest import NEARBY, Chain, ok, pay_by_wallet, place, quote, store_step
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.jobs import run_job_once
from zhongtai.fulfillment import parcel_receipts as parcel_receipts_module
from zhongtai.fulfillment.parcel_receipts import confirm_unconfirmed_parcels, parcel_receipts
from zhongtai.integrations.providers import Providers
from zhongtai.orders.settings import order_settings

CONFIRM_AFTER = timedelta(days=order_settings().parcel_confirm_days)
HOUR = timedelta(hours=1)


def _shipped(client: TestClient, chain: Chain, providers: Providers) -> tuple[Any, datetime]:
    """A paid parcel packed and handed to the carrier: the order, and when it shipped."""
    body = {"fulfillment_type": "ship", "address": NEARBY, "lines": chain.basket(1)}
    order = place(client, chain.app, quote(client, chain.app, body)["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    for step in ("accept", "start-picking", "pack"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    before = utcnow()
    shipment = {"carrier": "SF", "tracking_number": f"SF{order['number']}"}
    store_step(client, chain.clerk, order["id"], "ship", shipment)
    return order, before


def _tracking(client: TestClient, chain: Chain, order: Any) -> Any:
    return ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))


def test_a_parcel_nobody_confirmed_is_received_once_its_days_have_passed(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, shipped = _shipped(client, chain, providers)

    assert confirm_unconfirmed_parcels(session, now=shipped + CONFIRM_AFTER - HOUR) == 0
    assert confirm_unconfirmed_parcels(session, now=shipped + CONFIRM_AFTER + HOUR) == 1
    assert confirm_unconfirmed_parcels(session, now=shipped + CONFIRM_AFTER + 2 * HOUR) == 0
    session.commit()

    tracking = _tracking(client, chain, order)
    assert tracking["status"] == "completed"
    last = tracking["timeline"][-1]
    assert (last["from_status"], last["to_status"]) == ("shipped", "completed")
    assert last["note"] == (
        f"received: confirmed by the platform {CONFIRM_AFTER.days} days after shipping"
    )
    assert len(store_events(session, order, "order.completed")) == 1


def test_a_parcel_the_store_confirmed_delivered_is_left_alone(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, shipped = _shipped(client, chain, providers)
    store_step(client, chain.clerk, order["id"], "delivered")

    assert confirm_unconfirmed_parcels(session, now=shipped + CONFIRM_AFTER + HOUR) == 0
    assert len(store_events(session, order, "order.completed")) == 1


def test_a_delivery_out_with_its_rider_is_not_a_parcel_to_confirm(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, _ = on_the_road(client, chain, providers, steps=3)  # picked up, never delivered

    later = utcnow() + CONFIRM_AFTER + HOUR
    assert confirm_unconfirmed_parcels(session, now=later) == 0
    assert _tracking(client, chain, order)["status"] == "out_for_delivery"


def test_a_backlog_of_parcels_is_confirmed_in_short_transactions_until_none_is_left(
    client: TestClient, chain: Chain, providers: Providers, session: Session, test_db: Database
) -> None:
    shipped = [_shipped(client, chain, providers) for _ in range(3)]
    session.commit()
    job = parcel_receipts(30)
    assert job.chunk == parcel_receipts_module.BATCH
    later = max(at for _, at in shipped) + CONFIRM_AFTER + HOUR
    short = dataclasses.replace(
        job, run=functools.partial(confirm_unconfirmed_parcels, batch=2, now=later), chunk=2
    )
    assert run_job_once(test_db, short) == 3  # 2, then 1 (short: the run ends)
    assert {_tracking(client, chain, order)["status"] for order, _ in shipped} == {"completed"}
