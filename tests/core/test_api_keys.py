"""Touchpoints authenticate with API keys: shown once, stored hashed, scoped, revocable."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import Factory
from zhongtai.core.auth.models import ApiKey
from zhongtai.core.auth.roles import Channel, Role


def test_created_key_is_shown_once_and_only_its_hash_is_stored(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    factory.session.commit()
    r = client.post(
        "/api/v1/api-keys",
        headers=admin,
        json={"name": "till 1", "channel": "pos", "store_id": str(store.id), "terminal_id": "T01"},
    )
    assert r.status_code == 201, r.text
    full_key = r.json()["key"]
    assert full_key.startswith("ztk_")
    row = factory.session.scalars(select(ApiKey).where(ApiKey.name == "till 1")).one()
    assert full_key.split("_", 2)[2] not in row.secret_hash
    listed = client.get("/api/v1/api-keys", headers=admin).json()["items"]
    assert all("key" not in item for item in listed)
    me = client.get("/api/v1/auth/me", headers={"X-API-Key": full_key}).json()
    assert me["channel"] == "pos"
    assert me["terminal_id"] == "T01"
    assert me["store_ids"] == [str(store.id)]


def test_key_works_as_bearer_too_and_stops_working_when_revoked(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    created = client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "mini", "channel": "mini_program"}
    ).json()
    bearer = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    revoked = client.post(f"/api/v1/api-keys/{created['id']}/revoke", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    r = client.get("/api/v1/auth/me", headers=bearer)
    assert r.status_code == 401
    assert r.json()["type"].endswith("/unauthenticated")


def test_a_pos_key_needs_a_store_and_a_terminal(client: TestClient, factory: Factory) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post("/api/v1/api-keys", headers=admin, json={"name": "till", "channel": "pos"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"store_id", "terminal_id"}


def test_a_channel_key_cannot_be_given_scopes_beyond_its_channel(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(
        "/api/v1/api-keys",
        headers=admin,
        json={"name": "greedy app", "channel": "app", "scopes": ["staff:write"]},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "scopes"


def test_only_hq_manages_keys(client: TestClient, factory: Factory) -> None:
    manager = factory.staff_headers(Role.STORE_MANAGER)
    pos = factory.api_key_headers(Channel.POS)
    for headers in (manager, pos):
        r = client.post(
            "/api/v1/api-keys", headers=headers, json={"name": "sneaky", "channel": "erp"}
        )
        assert r.status_code == 403
        assert r.json()["type"].endswith("/forbidden")


def test_guessing_keys_from_one_address_is_throttled(
    client: TestClient, factory: Factory, settings: object
) -> None:
    limit = 30  # Settings.api_key_max_failures_per_ip default
    statuses = [
        client.get("/api/v1/auth/me", headers={"X-API-Key": f"ztk_{i:012x}_guess"}).status_code
        for i in range(limit + 1)
    ]
    assert statuses[: limit - 1] == [401] * (limit - 1)
    assert statuses[-1] == 429


def test_a_revoked_key_is_refused_at_once_even_right_after_being_remembered(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    created = client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "hot till", "channel": "app"}
    ).json()
    key = {"X-API-Key": created["key"]}
    for _ in range(3):  # verified once, then answered from the process's memory
        assert client.get("/api/v1/auth/me", headers=key).status_code == 200
    client.post(f"/api/v1/api-keys/{created['id']}/revoke", headers=admin)
    assert client.get("/api/v1/auth/me", headers=key).status_code == 401


def test_a_remembered_key_does_not_admit_a_forged_secret_with_the_same_prefix(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    real = client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "remembered", "channel": "app"}
    ).json()["key"]
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": real}).status_code == 200
    forged = real[: real.rindex("_") + 1] + "forged-secret-of-the-same-prefix"
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": forged}).status_code == 401


@pytest.mark.parametrize("terminal_id", ["till-1", "T" * 17, "收银1"])
def test_a_till_key_whose_terminal_id_a_receipt_cannot_print_is_refused_naming_it(
    client: TestClient, factory: Factory, terminal_id: str
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    factory.session.commit()
    body = {"name": "till x", "channel": "pos", "store_id": str(store.id)}
    r = client.post("/api/v1/api-keys", headers=admin, json={**body, "terminal_id": terminal_id})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "terminal_id"
    assert factory.session.scalars(select(ApiKey).where(ApiKey.name == "till x")).all() == []


def test_a_valid_key_still_works_from_an_address_throttled_for_guessing_keys(
    client: TestClient, factory: Factory
) -> None:
    """A valid key's request reads no failure count (the checkout path stays as cheap as it is):
    guessing from a till's address throttles the guesses, not the till. Its 256-bit secret is
    what keeps it from being guessed."""
    till = factory.api_key_headers(Channel.APP)
    limit = 30  # Settings.api_key_max_failures_per_ip default
    guesses = [
        client.get("/api/v1/auth/me", headers={"X-API-Key": f"ztk_{i:012x}_guess"}).status_code
        for i in range(limit)
    ]
    assert guesses[-1] == 429
    assert client.get("/api/v1/auth/me", headers=till).status_code == 200
