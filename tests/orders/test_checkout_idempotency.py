"""Quotes and placings bind their Idempotency-Key when they commit: a retry replays the first
answer, holds and places nothing more, and a key used for another basket is refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg.errors import DeadlockDetected, UndefinedColumn
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tests.orders.conftest import NEARBY, Chain
from zhongtai.core.auth.roles import Channel
from zhongtai.core.http import routing
from zhongtai.core.idempotency import IdempotencyRecord
from zhongtai.orders import checkout, placing
from zhongtai.orders.models import Order, Quote

QUOTES = "/api/v1/checkout/quotes"


def _count(chain: Chain, model: type) -> int:
    chain.session.expire_all()
    return chain.session.scalar(select(func.count()).select_from(model)) or 0


def _reserved(chain: Chain) -> int:
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert balance is not None
    return balance.reserved


def test_a_retried_quote_for_the_last_units_replays_its_answer_and_holds_them_once(
    client: TestClient, chain: Chain
) -> None:
    # All ten units: run again, the quote itself would now fail for want of stock.
    body = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(10)}
    headers = {**chain.app, "Idempotency-Key": "quote-last-units"}
    first = client.post(QUOTES, json=body, headers=headers)
    again = client.post(QUOTES, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _reserved(chain) == 10
    assert _count(chain, Quote) == 1


def test_a_retried_placing_replays_its_201_rather_than_answering_placed_before(
    client: TestClient, chain: Chain
) -> None:
    quoted = client.post(
        QUOTES,
        json={"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)},
        headers=chain.app,
    ).json()
    headers = {**chain.app, "Idempotency-Key": "place-once"}
    first = client.post("/api/v1/orders", json={"quote_id": quoted["id"]}, headers=headers)
    again = client.post("/api/v1/orders", json={"quote_id": quoted["id"]}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    # Without the key the same placing is recognised by its quote: 200, the same order.
    plain = client.post("/api/v1/orders", json={"quote_id": quoted["id"]}, headers=chain.app)
    assert (plain.status_code, plain.json()["id"]) == (200, first.json()["id"])
    assert _count(chain, Order) == 1


def test_the_same_key_on_another_basket_gets_422_and_holds_nothing_more(
    client: TestClient, chain: Chain
) -> None:
    headers = {**chain.app, "Idempotency-Key": "one-basket"}
    ok = client.post(
        QUOTES,
        json={"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)},
        headers=headers,
    )
    assert ok.status_code == 201
    other = client.post(
        QUOTES,
        json={"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(2)},
        headers=headers,
    )
    assert other.status_code == 422, other.text
    assert other.json()["type"].endswith("idempotency-key-reused")
    assert _reserved(chain) == 1
    assert _count(chain, Quote) == 1


def test_a_refused_quote_leaves_its_key_free_so_the_retry_runs_again(
    client: TestClient, chain: Chain
) -> None:
    body = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(11)}
    headers = {**chain.app, "Idempotency-Key": "too-many"}
    refused = client.post(QUOTES, json=body, headers=headers)
    assert refused.status_code == 409, refused.text
    assert _count(chain, IdempotencyRecord) == 0
    chain.stock.receive(chain.store, chain.skus[0], 1)
    retried = client.post(QUOTES, json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert _reserved(chain) == 11


def test_quote_and_place_are_committed_with_their_key_on_the_thread_that_ran_them(
    client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[str, int]] = []
    commit = routing._commit

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            ran.append((name, threading.get_ident()))
            return fn(*args, **kwargs)

        return recorded

    monkeypatch.setattr(checkout, "quote_checkout", wrap("quote", checkout.quote_checkout))
    monkeypatch.setattr(placing, "place_order", wrap("place", placing.place_order))
    monkeypatch.setattr(routing, "_commit", wrap("commit", commit))
    quoted = client.post(
        QUOTES,
        json={"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)},
        headers={**chain.app, "Idempotency-Key": "same-thread-quote"},
    )
    placed = client.post(
        "/api/v1/orders",
        json={"quote_id": quoted.json()["id"]},
        headers={**chain.app, "Idempotency-Key": "same-thread-place"},
    )
    assert (quoted.status_code, placed.status_code) == (201, 201)
    assert [name for name, _ in ran] == ["quote", "commit", "place", "commit"]
    assert ran[0][1] == ran[1][1] and ran[2][1] == ran[3][1], "one thread per request"
    assert _count(chain, IdempotencyRecord) == 2


def test_two_callers_may_use_the_same_key_for_quotes_each_bound_to_its_own_answer(
    client: TestClient, chain: Chain
) -> None:
    mini_program = chain.factory.api_key_headers(Channel.MINI_PROGRAM)
    key = {"Idempotency-Key": "shared-by-chance"}
    one = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)}
    two = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(2)}
    first = client.post(QUOTES, json=one, headers={**chain.app, **key})
    second = client.post(QUOTES, json=two, headers={**mini_program, **key})
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    again = client.post(QUOTES, json=two, headers={**mini_program, **key})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == second.json()["id"]
    assert _count(chain, Quote) == 2
    assert _reserved(chain) == 1 + 2


def test_an_unauthenticated_quote_with_a_key_gets_401_and_binds_nothing(
    client: TestClient, chain: Chain
) -> None:
    body = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)}
    refused = client.post(QUOTES, json=body, headers={"Idempotency-Key": "no-caller"})
    assert refused.status_code == 401, refused.text
    assert _count(chain, IdempotencyRecord) == 0
    assert _count(chain, Quote) == 0


def test_a_quote_caught_in_a_deadlock_answers_503_keeps_nothing_and_its_key_stays_free(
    client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_quote = checkout.quote_checkout

    def deadlocked(*args: Any, **kwargs: Any) -> Any:
        real_quote(*args, **kwargs)  # its holds are written, then the database gives up
        raise OperationalError("UPDATE stock_balances", {}, DeadlockDetected("deadlock detected"))

    monkeypatch.setattr(checkout, "quote_checkout", deadlocked)
    body = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(2)}
    headers = {**chain.app, "Idempotency-Key": "quote-in-a-deadlock"}
    refused = client.post(QUOTES, json=body, headers=headers)
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/database-busy")
    assert (_reserved(chain), _count(chain, Quote)) == (0, 0)

    monkeypatch.setattr(checkout, "quote_checkout", real_quote)
    retried = client.post(QUOTES, json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert (_reserved(chain), _count(chain, Quote)) == (2, 1)


def test_a_database_error_that_is_no_conflict_stays_a_500(
    client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, UndefinedColumn("column does not exist"))

    monkeypatch.setattr(checkout, "quote_checkout", broken)
    body = {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)}
    answer = client.post(QUOTES, json=body, headers=chain.app)
    assert answer.status_code == 500
    assert answer.json()["type"].endswith("/internal-error")
