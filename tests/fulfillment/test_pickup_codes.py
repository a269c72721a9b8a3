"""Pickup by code: every wrong code is counted whoever the clerk is, in the transaction that
judged it; the lock is per order and ends with its window; an order not yet waiting cannot be
handed over; and a clerk learns nothing of another store's orders: trying one answers as an
order that does not exist does, and counts as a refused try all the same."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.factories import TEST_SECRET, clerk_of
from tests.orders.conftest import Chain, ok, paid_pickup
from tests.orders.conftest import chain as chain  # the order tests' fixtures
from tests.orders.conftest import stock as stock
from tests.orders.test_pickup_journey import _ready_pickup_order
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import AuthFailure
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import TooManyAttempts
from zhongtai.core.settings import Settings
from zhongtai.fulfillment import pickup
from zhongtai.fulfillment.pickup import THROTTLE_KIND
from zhongtai.integrations.providers import Providers
from zhongtai.orders.errors import WrongPickupCode

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


def _counted(session: Session, **where: str) -> int:
    """Refused pickup tries counted, by ``subject`` or ``client_ip``."""
    conditions = [getattr(AuthFailure, column) == value for column, value in where.items()]
    return session.scalar(
        select(func.count())
        .select_from(AuthFailure)
        .where(AuthFailure.kind == THROTTLE_KIND, *conditions)
    )


def test_a_clerk_gets_the_same_answer_for_another_stores_order_as_for_no_such_order(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _ready_pickup_order(client, chain, providers)
    code = _code(client, chain, order)
    qr = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))["pickup"]
    elsewhere = chain.factory.staff_headers(Role.STORE_STAFF, [chain.factory.location()])
    missing = str(uuid.uuid4())
    tries = [  # (the order as the answer names it, what the clerk sends)
        (order["number"], {"order": order["number"], "code": code}),
        (order["number"], {"order": order["number"], "code": _wrong(code)}),
        (order["id"], {"qr_payload": qr["qr_payload"]}),
        ("NO-SUCH-ORDER", {"order": "NO-SUCH-ORDER", "code": code}),
        (missing, {"order": missing, "code": code}),
    ]
    answers = [(ref, client.post(PICKUPS, json=body, headers=elsewhere)) for ref, body in tries]
    assert {answer.status_code for _, answer in answers} == {404}
    problems = [
        {**answer.json(), "detail": answer.json()["detail"].replace(ref, "<order>")}
        for ref, answer in answers
    ]
    assert all(problem == problems[0] for problem in problems), problems
    assert set(problems[0]) == {"type", "title", "status", "detail", "instance"}
    assert problems[0]["detail"] == "No order <order> waits for pickup at your stores."
    status = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"]
    assert status == "ready_for_pickup"  # the right code at another store hands nothing over


def test_a_wrong_code_is_counted_in_the_transaction_that_judged_it(
    client: TestClient, chain: Chain, providers: Providers, session: Session, settings: Settings
) -> None:
    """The order's row is still locked when the try is counted: committed with the answer, it
    is seen by the next try, which waited for that row (see test_pickup_concurrency)."""
    order = _ready_pickup_order(client, chain, providers)
    with pytest.raises(pickup.COUNTED_REFUSALS) as refused:
        pickup.hand_over_pickup(
            session,
            clerk=clerk_of(chain.store.id),
            client_ip="203.0.113.7",
            settings=settings,
            order_ref=order["number"],
            code=_wrong(_code(client, chain, order)),
        )
    assert isinstance(refused.value, WrongPickupCode)
    assert _counted(session, subject=order["id"]) == 1  # before any commit: in that transaction
    session.commit()
    assert _counted(session, subject=order["id"]) == 1


def test_tries_at_another_stores_order_count_against_the_clerk_never_locking_the_order(
    client: TestClient, chain: Chain, providers: Providers, session: Session, settings: Settings
) -> None:
    order = _ready_pickup_order(client, chain, providers)
    code = _code(client, chain, order)
    stranger = clerk_of(chain.factory.location().id)
    for tried in [_wrong(code), code, _wrong(code), code, _wrong(code)]:
        with pytest.raises(pickup.COUNTED_REFUSALS):
            pickup.hand_over_pickup(
                session,
                clerk=stranger,
                client_ip="203.0.113.8",
                settings=settings,
                order_ref=order["number"],
                code=tried,
            )
        session.commit()  # as the endpoint answers a counted refusal
    assert _counted(session, client_ip="203.0.113.8") == 5
    assert _counted(session, subject=order["id"]) == 0
    # The customer at her own store is not locked out by another store's tries.
    assert _try(client, chain.clerk, order, code) == 200


def test_tries_at_no_such_order_and_at_another_stores_order_count_alike_for_the_clerks_address(
    client: TestClient, chain: Chain, providers: Providers, session: Session, settings: Settings
) -> None:
    """Were only one of them counted, a clerk could tell them apart by when she is throttled."""
    order = _ready_pickup_order(client, chain, providers)
    stranger, address = clerk_of(chain.factory.location().id), "203.0.113.9"

    def try_at(order_ref: str) -> None:
        pickup.hand_over_pickup(
            session,
            clerk=stranger,
            client_ip=address,
            settings=settings,
            order_ref=order_ref,
            code="123456",
        )

    refs = [order["number"], "NO-SUCH-ORDER"] * 25
    for n, ref in enumerate(refs, start=1):
        with pytest.raises(pickup.COUNTED_REFUSALS):
            try_at(ref)
        session.commit()
        assert _counted(session, client_ip=address) == n
    for ref in (order["number"], "NO-SUCH-ORDER"):
        with pytest.raises(TooManyAttempts):
            try_at(ref)
        session.rollback()
    assert _counted(session, client_ip=address) == len(refs)


def test_wrong_codes_through_the_api_lock_the_order_after_five_and_each_is_counted_once(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _ready_pickup_order(client, chain, providers)
    code = _code(client, chain, order)
    answers = [_try(client, chain.clerk, order, _wrong(code)) for _ in range(7)]
    assert answers == [422] * 5 + [429] * 2
    assert _counted(session, subject=order["id"]) == 5
    assert _try(client, chain.clerk, order, code) == 429  # the right code waits out the lock


def test_tries_at_another_stores_order_through_the_api_are_counted_for_the_clerk(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _ready_pickup_order(client, chain, providers)
    code = _code(client, chain, order)
    elsewhere = chain.factory.staff_headers(Role.STORE_STAFF, [chain.factory.location()])
    assert [_try(client, elsewhere, order, code) for _ in range(3)] == [404] * 3
    assert _counted(session, subject=order["id"]) == 0
    assert _try(client, chain.clerk, order, code) == 200
