"""Pickup by code: every wrong code is counted whoever the clerk is, the lock is
per order and ends with its window, and an order not yet waiting cannot be handed over."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.factories import TEST_SECRET
from tests.orders.conftest import Chain, ok, paid_pickup
from tests.orders.conftest import chain as chain  # the order tests' fixtures
from tests.orders.conftest import stock as stock
from tests.orders.test_pickup_journey import _ready_pickup_order
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import AuthFailure
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.fulfillment.pickup import THROTTLE_KIND
from zhongtai.integrations.providers import Providers

PICKUPS = "/api/v1/fulfillment/pickups"


def _code(client: TestClient, chain: Chain, order: dict[str, Any]) -> str:
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    return str(tracking["pickup"]["code"])


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def _try(client: TestClient, headers: dict[str, str], order: dict[str, Any], code: str) -> int:
    answer = client.post(PICKUPS, json={"order": order["number"], "code": code}, headers=headers)
    return answer.status_code


def test_wrong_codes_by_a_clerk_with_a_long_username_are_counted_and_lock_the_order(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    """The failure log's reason has room for 64 characters: a long username must not make the
    log fail (a 500, and the attempt never counted: no lock, however many codes are tried)."""
    order = _ready_pickup_order(client, chain, providers)
    clerk = chain.factory.staff(Role.STORE_STAFF, [chain.store], username="c" * 60)
    issued = auth.open_session(
        session, clerk, secret=TEST_SECRET, ttl=timedelta(hours=1), client_ip="127.0.0.1"
    )
    session.commit()
    headers = {"Authorization": f"Bearer {issued.access_token}"}
    wrong = _wrong(_code(client, chain, order))
    assert [_try(client, headers, order, wrong) for _ in range(6)] == [422] * 5 + [429]
    reasons = session.scalars(select(AuthFailure.reason).where(AuthFailure.kind == THROTTLE_KIND))
    assert all(len(reason) <= 64 for reason in reasons)


def test_wrong_codes_lock_that_order_only_not_the_stores_other_orders(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    locked, other = (_ready_pickup_order(client, chain, providers) for _ in range(2))
    wrong = _wrong(_code(client, chain, locked))
    assert [_try(client, chain.clerk, locked, wrong) for _ in range(6)][-1] == 429
    assert _try(client, chain.clerk, other, _code(client, chain, other)) == 200


def test_the_lock_ends_with_its_window_and_the_right_code_then_hands_over(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _ready_pickup_order(client, chain, providers)
    code = _code(client, chain, order)
    assert [_try(client, chain.clerk, order, _wrong(code)) for _ in range(5)] == [422] * 5
    assert _try(client, chain.clerk, order, code) == 429
    session.execute(
        update(AuthFailure)
        .where(AuthFailure.kind == THROTTLE_KIND, AuthFailure.subject == order["id"])
        .values(at=utcnow() - timedelta(minutes=16))
    )
    session.commit()
    assert _try(client, chain.clerk, order, code) == 200


def test_an_order_not_yet_ready_cannot_be_picked_up(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = paid_pickup(client, chain, providers, 1)
    answer = client.post(
        PICKUPS, json={"order": order["number"], "code": "123456"}, headers=chain.clerk
    )
    assert answer.status_code == 409
    assert "not ready for pickup" in answer.json()["detail"]
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == "paid"
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 10
