"""Every response follows the API conventions: problems, request ids, OpenAPI, cursors."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import Factory
from zhongtai.core.auth.roles import Role


def test_malformed_json_body_is_a_422_problem_not_a_500(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(
        "/api/v1/api-keys",
        content=b"{not json",
        headers={**admin, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("/validation-error")
    assert body["status"] == 422
    assert body["errors"]


def test_validation_errors_name_each_field_and_what_is_expected(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(
        "/api/v1/staff",
        headers=admin,
        json={"username": "x", "display_name": "", "role": "king", "password": "1"},
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"username", "display_name", "role", "password"} <= fields
    role_error = next(e for e in r.json()["errors"] if e["field"] == "role")
    assert "hq_admin" in role_error["expected"]["expected"]


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/not-found")


def test_missing_credentials_is_a_401_problem_with_www_authenticate(client: TestClient) -> None:
    r = client.get("/api/v1/staff")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["type"].endswith("/unauthenticated")


def test_every_response_carries_a_request_id_and_echoes_a_sane_incoming_one(
    client: TestClient,
) -> None:
    generated = client.get("/healthz")
    assert len(generated.headers["X-Request-ID"]) >= 16
    echoed = client.get("/healthz", headers={"X-Request-ID": "pos-17-abc"})
    assert echoed.headers["X-Request-ID"] == "pos-17-abc"
    hostile = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert hostile.headers["X-Request-ID"] != "bad id\nwith newline"


def test_openapi_documents_the_versioned_api_and_the_idempotency_header(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()
    assert all(p.startswith("/api/v1/") or p == "/healthz" for p in spec["paths"])
    params = spec["paths"]["/api/v1/api-keys"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)
    get_params = spec["paths"]["/api/v1/api-keys"]["get"].get("parameters", [])
    assert not any(p["name"] == "Idempotency-Key" for p in get_params)
    assert client.get("/docs").status_code == 200


def test_lists_page_with_an_opaque_cursor_and_no_item_twice(
    client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    for i in range(7):
        factory.staff(Role.ANALYST, username=f"analyst-page-{i}")
    factory.session.commit()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = client.get("/api/v1/staff", params=params, headers=admin)
        assert r.status_code == 200
        seen += [u["id"] for u in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8
    assert pages == 3


def test_a_forged_cursor_is_a_422_naming_the_cursor(client: TestClient, factory: Factory) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.get("/api/v1/staff", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cursor"
