"""A retried POST with the same Idempotency-Key answers the first response and changes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import Factory
from zhongtai.core.auth.models import ApiKey
from zhongtai.core.auth.roles import Role
from zhongtai.core.idempotency import KEY_RULE, IdempotencyRecord


def _key_count(factory: Factory, name: str) -> int:
    return factory.session.scalar(select(func.count()).where(ApiKey.name == name)) or 0


def test_replay_with_same_key_and_body_returns_the_first_response_and_one_effect(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    body = {"name": "app gateway", "channel": "app"}
    headers = {**admin, "Idempotency-Key": "create-app-key-1"}
    first = client.post("/api/v1/api-keys", json=body, headers=headers)
    second = client.post("/api/v1/api-keys", json=body, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json() == {**first.json(), "key": None}
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _key_count(factory, "app gateway") == 1


def test_the_new_key_secret_is_never_stored_for_replays(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(
        "/api/v1/api-keys",
        json={"name": "secret", "channel": "erp"},
        headers={**admin, "Idempotency-Key": "secret-1"},
    )
    secret = r.json()["key"]
    stored = factory.session.scalars(
        select(IdempotencyRecord.body).where(IdempotencyRecord.key == "secret-1")
    ).one()
    assert stored is not None
    assert secret.encode() not in stored
    assert b'"key":null' in stored


def test_same_key_with_a_different_body_gets_422_and_changes_nothing(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    headers = {**admin, "Idempotency-Key": "k-42"}
    ok = client.post("/api/v1/api-keys", json={"name": "one", "channel": "app"}, headers=headers)
    assert ok.status_code == 201
    other = client.post("/api/v1/api-keys", json={"name": "two", "channel": "app"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert _key_count(factory, "two") == 0


def test_keys_are_scoped_per_caller_so_two_callers_may_use_the_same_key(
    client: TestClient, factory: Factory
) -> None:
    a = {**factory.staff_headers(Role.HQ_ADMIN), "Idempotency-Key": "shared"}
    b = {**factory.staff_headers(Role.HQ_ADMIN), "Idempotency-Key": "shared"}
    ra = client.post("/api/v1/api-keys", json={"name": "from a", "channel": "erp"}, headers=a)
    rb = client.post("/api/v1/api-keys", json={"name": "from b", "channel": "erp"}, headers=b)
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]


def test_a_failed_request_does_not_bind_the_key_so_a_retry_runs_again(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    headers = {**admin, "Idempotency-Key": "pos-without-store"}
    body = {"name": "till", "channel": "pos"}
    first = client.post("/api/v1/api-keys", json=body, headers=headers)
    assert first.status_code == 422
    again = client.post("/api/v1/api-keys", json=body, headers=headers)
    assert again.status_code == 422
    assert "Idempotent-Replayed" not in again.headers
    assert _key_count(factory, "till") == 0


def test_malformed_key_is_a_422_naming_the_header_and_changes_nothing(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(
        "/api/v1/api-keys",
        json={"name": "x", "channel": "app"},
        headers={**admin, "Idempotency-Key": "x" * 300},
    )
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert (error["field"], error["in"]) == ("header.Idempotency-Key", "header")
    assert error["message"] == KEY_RULE
    assert _key_count(factory, "x") == 0


@pytest.mark.parametrize("path", ["/api/v1/api-keys", "/api/v1/checkout/quotes", "/api/v1/orders"])
@pytest.mark.parametrize("key", ["x" * 300, "with space", ""])
def test_a_caller_without_credentials_gets_401_before_its_key_is_judged(
    client: TestClient, path: str, key: str
) -> None:
    r = client.post(path, json={}, headers={"Idempotency-Key": key})
    assert r.status_code == 401
    assert r.json()["type"].endswith("unauthenticated")
