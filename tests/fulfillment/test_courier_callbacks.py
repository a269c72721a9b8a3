"""A courier platform's status callbacks: signed, applied once, and refused with a 422 naming
the field (never a 500) when what they carry cannot be kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.orders.conftest import Chain, ok
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from tests.orders.test_delivery_journey import _packed_delivery
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.signed_callbacks import sign_callback

CALLBACKS = "/api/v1/couriers/callbacks/simulated"


def _booked(client: TestClient, chain: Chain, providers: Providers) -> tuple[Any, Any]:
    """A packed delivery whose rider was assigned (callback 1, not yet delivered to us)."""
    _, order = _packed_delivery(client, chain, providers, 1)
    url = f"/api/v1/fulfillment/orders/{order['id']}/dispatch"
    booked = ok(client.post(url, json={}, headers=chain.clerk), 201)
    fleet: Any = providers.couriers["simulated"]
    fleet.advance(booked["courier_ref"])
    return fleet, booked


BAD = [
    ("sequence", {"sequence": 10**12}),
    ("sequence", {"sequence": 10**20}),
    ("sequence", {"sequence": 0}),
    ("occurred_at", {"status": "delivered", "occurred_at": "2026-11-27T10:00:00"}),
    ("courier_ref", {"courier_ref": "sim_dsp_\u0000"}),
    ("rider_name", {"rider_name": "王\u0000"}),
]


@pytest.mark.parametrize(("field", "change"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_a_signed_callback_the_database_cannot_keep_is_a_422_naming_the_field(
    app: FastAPI,
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    field: str,
    change: dict[str, Any],
) -> None:
    fleet, booked = _booked(client, chain, providers)
    [assigned] = fleet.signed_callbacks(booked["courier_ref"])
    body = json.dumps({**json.loads(assigned.body), **change}).encode()
    signed = sign_callback(fleet._secret, assigned.url, body, now=int(fleet.clock()))
    with TestClient(app, raise_server_exceptions=False) as platform:
        answer = platform.post(CALLBACKS, content=body, headers=signed.headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    # Nothing was kept: the genuine callback 1 still applies.
    assert (
        client.post(CALLBACKS, content=assigned.body, headers=assigned.headers).status_code == 204
    )
    dispatch = session.scalars(
        select(CourierDispatch)
        .where(CourierDispatch.courier_ref == booked["courier_ref"])
        .execution_options(populate_existing=True)
    ).one()
    assert (dispatch.status, dispatch.last_sequence) == (DispatchStatus.ASSIGNED, 1)


def test_a_callback_unsigned_or_signed_too_long_ago_is_a_401_and_changes_nothing(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    fleet, booked = _booked(client, chain, providers)
    [assigned] = fleet.signed_callbacks(booked["courier_ref"])
    unsigned = client.post(CALLBACKS, content=assigned.body)
    replayed = sign_callback(
        fleet._secret, assigned.url, assigned.body, now=int(fleet.clock()) - 301
    )
    stale = client.post(CALLBACKS, content=assigned.body, headers=replayed.headers)
    assert (unsigned.status_code, stale.status_code) == (401, 401)
    dispatch = session.scalars(
        select(CourierDispatch).where(CourierDispatch.courier_ref == booked["courier_ref"])
    ).one()
    assert (dispatch.status, dispatch.last_sequence) == (DispatchStatus.REQUESTED, 0)
