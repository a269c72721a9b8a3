"""Bad text, huge numbers and impossible moments at the stores endpoints are 422s naming the
field, never 500s (PostgreSQL refuses NUL in text; year 9999 has no day after it)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.stores.test_api_stores import NEW_STORE, STORES
from zhongtai.core.auth.roles import Role
from zhongtai.stores.models import Location, OpeningException


@pytest.fixture
def safe_client(app: Any) -> TestClient:
    """A client that receives a 500 as the answer instead of raising the bug into the test."""
    return TestClient(app, base_url="http://testserver", raise_server_exceptions=False)


def _problem_fields(r: Any) -> list[str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize("field", ["name", "region", "city", "address", "phone"])
@pytest.mark.parametrize("bad", ["徐家汇\x00店", "徐家汇\r\n店"])
def test_control_characters_in_a_new_store_are_a_422_naming_the_field(
    safe_client: TestClient, factory: Factory, session: Session, field: str, bad: str
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    r = safe_client.post(STORES, json={**NEW_STORE, "code": "NUL1", field: bad}, headers=hq)
    assert _problem_fields(r) == [field]
    assert session.scalar(select(func.count()).where(Location.code == "NUL1")) == 0


def test_control_characters_elsewhere_in_the_stores_api_are_422s(
    safe_client: TestClient, factory: Factory, session: Session
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    r = safe_client.patch(f"{STORES}/{store.id}", json={"address": "路\x00"}, headers=hq)
    assert _problem_fields(r) == ["address"]
    r = safe_client.get(STORES, params={"region": "黄浦\x00"}, headers=hq)
    assert _problem_fields(r) == ["query.region"]
    r = safe_client.post(
        f"{STORES}/{store.id}/exceptions",
        json={"on_date": "2030-02-10", "closed": True, "note": "春节\x00"},
        headers=hq,
    )
    assert _problem_fields(r) == ["note"]
    assert session.scalar(select(func.count()).select_from(OpeningException)) == 0
    r = safe_client.put(
        f"{STORES}/{store.id}/capabilities/in_store_services",
        json={"services": ["fish\x00cleaning"]},
        headers=hq,
    )
    assert _problem_fields(r) == ["services.0"]
    for body, field in (
        ({"scope": "region", "scope_value": "黄浦\x00"}, "scope_value"),
        ({"scope": "chain", "note": "试点\x00"}, "note"),
    ):
        r = safe_client.put(
            "/api/v1/pilot/rules", json={"feature": "delivery", "enabled": True, **body}, headers=hq
        )
        assert _problem_fields(r) == [field]


def test_a_delivery_radius_beyond_any_rider_is_a_422_not_an_overflow(
    safe_client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    url = f"{STORES}/{store.id}/capabilities/delivery"
    r = safe_client.put(url, json={"delivery_radius_m": 10**20}, headers=hq)
    assert _problem_fields(r) == ["delivery_radius_m"]
    ok = safe_client.put(url, json={"delivery_radius_m": 5000}, headers=hq)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31T23:00:00+00:00", "0001-01-01T00:00:00+08:00", "0001-01-02T00:00:00+00:00"],
)
def test_open_at_a_moment_at_the_ends_of_the_calendar_is_a_422_naming_at(
    safe_client: TestClient, factory: Factory, moment: str
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    r = safe_client.get(f"{STORES}/{store.id}/open", params={"at": moment}, headers=hq)
    assert _problem_fields(r) == ["query.at"]


@pytest.mark.parametrize("field", ["status", "kind", "name"])
def test_nulling_a_field_a_store_cannot_lack_is_a_422_naming_it(
    safe_client: TestClient, factory: Factory, session: Session, field: str
) -> None:
    """`status: null` passed the null check (only phone may be null) and hit NOT NULL: 500."""
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    r = safe_client.patch(f"{STORES}/{store.id}", json={field: None}, headers=hq)
    assert _problem_fields(r) == [field]
    session.expire_all()
    assert session.get(Location, store.id) is not None
    assert safe_client.get(f"{STORES}/{store.id}", headers=hq).json()["status"] == "active"
