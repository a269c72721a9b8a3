"""The moments a courier platform reports are kept within what can be true: never later than the
server's now (a platform's clock runs ahead, or is wrong), never before the rider was booked; so
an order is never completed in the future and no delivery lasts a negative time."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.fulfillment.couriers_at_work import (
    courier_events,
    dispatch_row,
    fleet_of,
    forward,
    moment,
    packed_and_booked,
    post,
    rewritten,
)
from tests.orders.conftest import Chain, ok
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.core.clock import utcnow
from zhongtai.fulfillment.models import FulfillmentTask
from zhongtai.integrations.providers import Providers


def _handed_over_at(session: Session, order_id: str) -> list[datetime | None]:
    return list(
        session.scalars(
            select(FulfillmentTask.handed_over_at)
            .where(FulfillmentTask.order_id == uuid.UUID(order_id))
            .execution_options(populate_existing=True)
        )
    )


def test_a_delivery_dated_in_the_future_completes_the_order_when_the_callback_arrives(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    ref = booked["courier_ref"]
    for _ in range(4):  # assigned, arrived, picked up, delivered
        fleet_of(providers).advance(ref)
    forward(client, providers, ref, 1, 2, 3)
    # The platform's clock runs three hours ahead; its signature is fresh all the same.
    claimed = utcnow() + timedelta(hours=3)
    ahead = rewritten(providers, ref, 4, occurred_at=claimed.isoformat())
    before = utcnow()
    assert post(client, ahead) == 204
    after = utcnow()

    done = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert done["status"] == "completed"
    assert before <= moment(done["completed_at"]) <= after
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert moment(tracking["courier"]["delivered_at"]) == moment(done["completed_at"])
    delivered = courier_events(session, order["id"])[-1]
    assert delivered["status"] == "delivered"
    assert moment(delivered["occurred_at"]) == moment(done["completed_at"])
    assert moment(delivered["reported_at"]) == claimed  # what the platform said, for the store


def test_a_delivery_dated_before_its_rider_was_booked_counts_from_the_booking(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    ref = booked["courier_ref"]
    for _ in range(4):
        fleet_of(providers).advance(ref)
    forward(client, providers, ref, 1, 2)
    # A platform clock reset to 2020: picked up and delivered "six years ago".
    assert (
        post(client, rewritten(providers, ref, 3, occurred_at="2020-01-01T08:00:00+08:00")) == 204
    )
    assert (
        post(client, rewritten(providers, ref, 4, occurred_at="2020-01-01T08:30:00+08:00")) == 204
    )

    booked_at = moment(dispatch_row(session, ref).created_at)
    done = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    completed_at = moment(done["completed_at"])
    assert completed_at == booked_at
    assert moment(done["placed_at"]) <= completed_at
    assert [h and moment(h) for h in _handed_over_at(session, order["id"])] == [booked_at]
    events = courier_events(session, order["id"])[-2:]
    assert [moment(e["occurred_at"]) for e in events] == [booked_at, booked_at]
    assert [moment(e["reported_at"]) for e in events] == [
        moment("2020-01-01T08:00:00+08:00"),
        moment("2020-01-01T08:30:00+08:00"),
    ]


def test_a_delivery_called_back_before_its_pickup_was_handed_over_no_later_than_delivered(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order, booked = packed_and_booked(client, chain, providers)
    ref = booked["courier_ref"]
    for _ in range(4):
        fleet_of(providers).advance(ref)
    # Only "delivered" gets through at first: it implies the rider collected the parcel.
    forward(client, providers, ref, 4)
    forward(client, providers, ref, 1, 2, 3)  # the rest arrive late and change nothing

    done = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert done["status"] == "completed"
    [handed_over_at] = _handed_over_at(session, order["id"])
    assert handed_over_at is not None
    assert moment(handed_over_at) <= moment(done["completed_at"])
