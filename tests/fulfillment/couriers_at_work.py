"""Builders of the courier callback tests: a packed delivery with a rider booked through the API,
the fleet's callbacks forwarded as the platform POSTs them, and callbacks a platform could send
that the simulated fleet never does (a moment from a skewed clock, a step out of its journey),
and a call-off the platform took in a transaction of ours that was then lost."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.orders.conftest import Chain, ok
from tests.orders.test_delivery_journey import _packed_delivery
from zhongtai.core.clock import as_utc
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.fulfillment import cancellation
from zhongtai.fulfillment.models import CourierDispatch
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.signed_callbacks import SignedCallback, sign_callback

CALLBACKS = "/api/v1/couriers/callbacks/simulated"


def fleet_of(providers: Providers) -> Any:
    return providers.couriers["simulated"]


def book_rider(client: TestClient, chain: Chain, order: Any) -> Any:
    """Dispatch a rider for a packed delivery order through the store's API."""
    url = f"/api/v1/fulfillment/orders/{order['id']}/dispatch"
    return ok(client.post(url, json={}, headers=chain.clerk), 201)


def packed_and_booked(client: TestClient, chain: Chain, providers: Providers) -> tuple[Any, Any]:
    """A packed delivery of two units with a rider booked (nothing called back yet)."""
    _, order = _packed_delivery(client, chain, providers, 2)
    return order, book_rider(client, chain, order)


def on_the_road(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    *,
    steps: int,
    heard: int | None = None,
    failed: bool = False,
) -> tuple[Any, str]:
    """A packed delivery whose rider took the first ``steps`` of the journey at the platform
    (assigned, at the store, picked up, delivered), then failed if ``failed``; the first
    ``heard`` callbacks (all, by default) reached us, the platform gave up on the others. The
    order and the job."""
    order, booked = packed_and_booked(client, chain, providers)
    ref: str = booked["courier_ref"]
    fleet = fleet_of(providers)
    for _ in range(steps):
        fleet.advance(ref)
    if failed:
        fleet.fail(ref)
    forward(client, providers, ref, *range(1, (steps if heard is None else heard) + 1))
    return order, ref


def cancel(client: TestClient, chain: Chain, order: Any, key: str | None = None) -> Any:
    """The store cancels the order through the API (with an Idempotency-Key when given)."""
    return client.post(
        f"/api/v1/orders/{order['id']}/cancel",
        json={"reason": "customer changed their mind"},
        headers={**chain.clerk, **({"Idempotency-Key": key} if key else {})},
    )


def call_off_lost(db: Database, order: Any, providers: Providers) -> None:
    """Cancel the order as the API does -- the platform takes the call-off -- and then lose the
    transaction: a later step of the request failed, or the process died before its commit."""
    with db.writer() as s:
        cancellation.cancel_order(
            s, uuid.UUID(order["id"]), reason="customer changed their mind", providers=providers
        )
        s.rollback()


def post(client: TestClient, callback: SignedCallback) -> int:
    answer = client.post(CALLBACKS, content=callback.body, headers=callback.headers)
    return int(answer.status_code)


def forward(client: TestClient, providers: Providers, courier_ref: str, *sequences: int) -> None:
    """POST the fleet's callbacks of these sequences, in the order given; each answers 204."""
    sent = fleet_of(providers).signed_callbacks(courier_ref)
    assert [post(client, sent[s - 1]) for s in sequences] == [204] * len(sequences)


def rewritten(providers: Providers, courier_ref: str, like: int, **change: Any) -> SignedCallback:
    """The fleet's callback ``like`` with fields changed, signed now with the platform's secret:
    a genuine callback of a platform that does what the simulated fleet never does."""
    fleet = fleet_of(providers)
    original = fleet.signed_callbacks(courier_ref)[like - 1]
    body = json.dumps({**json.loads(original.body), **change}).encode()
    return sign_callback(fleet._secret, original.url, body, now=int(fleet.clock()))


def dispatch_row(session: Session, courier_ref: str) -> CourierDispatch:
    return session.scalars(
        select(CourierDispatch)
        .where(CourierDispatch.courier_ref == courier_ref)
        .execution_options(populate_existing=True)
    ).one()


def store_events(session: Session, order: Any, event_type: str) -> list[dict[str, Any]]:
    """The payloads of the order's events of ``event_type``, each filed under its store (whose
    consoles follow the store's events)."""
    rows = session.execute(
        select(OutboxEvent.payload, OutboxEvent.store_id).where(
            OutboxEvent.type == event_type, OutboxEvent.aggregate_id == order["id"]
        )
    ).all()
    assert all(str(store_id) == order["store_id"] for _, store_id in rows)
    return [payload for payload, _ in rows]


def courier_events(session: Session, order_id: str) -> list[dict[str, Any]]:
    """The payloads of the order's ``fulfillment.courier_updated`` events, oldest first."""
    return list(
        session.scalars(
            select(OutboxEvent.payload)
            .where(
                OutboxEvent.type == "fulfillment.courier_updated",
                OutboxEvent.aggregate_id == order_id,
            )
            .order_by(OutboxEvent.seq)
        )
    )


def moment(text: str | datetime) -> datetime:
    """A moment as the API or an event payload gives it, in UTC."""
    return as_utc(text if isinstance(text, datetime) else datetime.fromisoformat(text))
