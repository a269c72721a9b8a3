"""Staff log in with a password, get an expiring token, and lose it on logout."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import TEST_PASSWORD, Factory
from zhongtai.core.auth.roles import Role


def test_login_returns_a_token_that_identifies_the_user(
    client: TestClient, factory: Factory
) -> None:
    user = factory.staff(Role.HQ_ADMIN, username="boss")
    factory.session.commit()
    r = client.post("/api/v1/auth/login", json={"username": "boss", "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_at"].endswith("+00:00") or body["expires_at"].endswith("Z")
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == str(user.id)
    assert me.json()["role"] == "hq_admin"
    assert me.json()["store_ids"] is None


def test_wrong_password_gets_401_problem_without_revealing_which_part_was_wrong(
    client: TestClient, factory: Factory
) -> None:
    factory.staff(Role.HQ_ADMIN, username="boss2")
    factory.session.commit()
    wrong_pw = client.post("/api/v1/auth/login", json={"username": "boss2", "password": "nope"})
    no_user = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope"})
    for r in (wrong_pw, no_user):
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/unauthenticated")
    assert wrong_pw.json()["detail"] == no_user.json()["detail"]


def test_logout_revokes_the_token_at_once(client: TestClient, factory: Factory) -> None:
    headers = factory.staff_headers(Role.STORE_STAFF)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]


def test_repeated_failures_are_throttled_with_429_even_for_the_right_password(
    client: TestClient, factory: Factory
) -> None:
    factory.staff(Role.HQ_ADMIN, username="target")
    factory.session.commit()
    for _ in range(5):
        r = client.post("/api/v1/auth/login", json={"username": "target", "password": "guess"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": "target", "password": TEST_PASSWORD})
    assert r.status_code == 429
    assert r.json()["type"].endswith("/too-many-attempts")
    assert int(r.headers["Retry-After"]) > 0


def test_deactivated_user_cannot_log_in_and_loses_open_sessions(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    clerk = factory.staff(Role.STORE_STAFF, username="leaver")
    factory.session.commit()
    token = client.post(
        "/api/v1/auth/login", json={"username": "leaver", "password": TEST_PASSWORD}
    ).json()
    clerk_headers = {"Authorization": f"Bearer {token['access_token']}"}
    r = client.patch(f"/api/v1/staff/{clerk.id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/auth/me", headers=clerk_headers).status_code == 401
    again = client.post(
        "/api/v1/auth/login", json={"username": "leaver", "password": TEST_PASSWORD}
    )
    assert again.status_code == 401


def test_a_token_signed_with_another_secret_is_refused(client: TestClient) -> None:
    import jwt

    forged = jwt.encode(
        {"sub": "x", "sid": "y", "exp": 9999999999, "aud": "zhongtai-api"},
        "another-secret-of-sufficient-length-0123456789",
        algorithm="HS256",
    )
    r = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_a_store_manager_sees_her_staff_but_not_hq_or_other_stores_staff(
    client: TestClient, factory: Factory
) -> None:
    store, elsewhere = factory.location(), factory.location()
    manager = factory.staff_headers(Role.STORE_MANAGER, [store])
    colleague = factory.staff(Role.STORE_STAFF, [store])
    stranger = factory.staff(Role.STORE_STAFF, [elsewhere])
    hq = factory.staff(Role.HQ_ADMIN)
    factory.session.commit()
    assert client.get(f"/api/v1/staff/{colleague.id}", headers=manager).status_code == 200
    for other in (stranger, hq):
        r = client.get(f"/api/v1/staff/{other.id}", headers=manager)
        assert r.status_code == 403
        assert r.json()["type"].endswith("/store-out-of-scope")


def _wrong_login(client: TestClient, username: str, **headers: str) -> int:
    r = client.post(
        "/api/v1/auth/login", json={"username": username, "password": "guess"}, headers=headers
    )
    return r.status_code


def test_an_unknown_username_is_throttled_like_a_known_one_so_neither_answer_tells_them_apart(
    client: TestClient, factory: Factory
) -> None:
    factory.staff(Role.HQ_ADMIN, username="known")
    factory.session.commit()
    answers = {
        name: [
            client.post("/api/v1/auth/login", json={"username": name, "password": "guess"})
            for _ in range(6)
        ]
        for name in ("known", "unknown")
    }
    for name, responses in answers.items():
        assert [r.status_code for r in responses] == [401] * 5 + [429], name
    known, unknown = answers["known"], answers["unknown"]
    for a, b in zip(known, unknown, strict=True):
        assert a.json() == b.json()
        assert a.headers.get("Retry-After") == b.headers.get("Retry-After")


def test_wrong_passwords_for_many_usernames_from_one_address_are_throttled_at_four_times_the_limit(
    client: TestClient, factory: Factory
) -> None:
    factory.staff(Role.HQ_ADMIN, username="sprayed")
    factory.session.commit()
    statuses = [_wrong_login(client, f"someone-{i}") for i in range(20)]
    assert statuses == [401] * 20
    assert _wrong_login(client, "someone-else") == 429
    r = client.post("/api/v1/auth/login", json={"username": "sprayed", "password": TEST_PASSWORD})
    assert r.status_code == 429  # a right password from that address too


def test_a_refused_login_sent_with_an_idempotency_key_is_counted_and_its_retry_is_judged_again(
    client: TestClient, factory: Factory
) -> None:
    """The refusal is committed with its count; the Idempotency-Key is not bound by it (nor left
    in flight), so a retry with the same key is tried and counted again, up to the limit."""
    factory.staff(Role.HQ_ADMIN, username="retrier")
    factory.session.commit()
    key = {"Idempotency-Key": "login-retry-1"}
    statuses = [_wrong_login(client, "retrier", **key) for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    right = client.post(
        "/api/v1/auth/login",
        json={"username": "retrier", "password": TEST_PASSWORD},
        headers={"Idempotency-Key": "login-retry-2"},
    )
    assert right.status_code == 429
