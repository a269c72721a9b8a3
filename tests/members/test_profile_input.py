"""Bad profile input is a 422 problem naming the field, never a 500 (PostgreSQL refuses a NUL
in text) and never stored: control characters, blank names, impossible birthdays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import new_phone
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.members.models import Member

IDENTIFY = "/api/v1/members/identify"


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.fixture
def hq(factory: Factory) -> dict[str, str]:
    return factory.staff_headers(Role.HQ_ADMIN)


def _member(client: TestClient, hq: dict[str, str]) -> str:
    made = client.post(IDENTIFY, json={"kind": "phone", "value": new_phone()}, headers=hq)
    assert made.status_code == 201, made.text
    return str(made.json()["member"]["id"])


def test_registering_with_a_nul_in_her_name_is_a_422_naming_name_and_creates_nobody(
    client: TestClient, hq: dict[str, str], session: Session
) -> None:
    before = session.scalar(select(func.count()).select_from(Member))
    r = client.post(
        IDENTIFY, json={"kind": "phone", "value": new_phone(), "name": "王\x00芳"}, headers=hq
    )
    _refused(r, "name")
    assert session.scalar(select(func.count()).select_from(Member)) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "王\x00芳"}, "name"),
        ({"name": "王\n芳"}, "name"),
        ({"tags": ["VIP", "鲜\x00食"]}, "tags.1"),
        ({"preferences": {"diet": "no\x00pork"}}, "preferences.diet"),
        ({"preferences": {"note": "line\x1bbreak"}}, "preferences.note"),
    ],
)
def test_a_profile_change_with_a_control_character_is_a_422_naming_the_field(
    client: TestClient, hq: dict[str, str], body: dict[str, Any], field: str
) -> None:
    member_id = _member(client, hq)
    _refused(client.patch(f"/api/v1/members/{member_id}", json=body, headers=hq), field)
    kept = client.get(f"/api/v1/members/{member_id}", headers=hq).json()
    assert (kept["name"], kept["tags"], kept["preferences"]) == (None, [], {})


def test_a_name_of_blanks_only_is_a_422_and_a_name_is_kept_without_surrounding_blanks(
    client: TestClient, hq: dict[str, str]
) -> None:
    member_id = _member(client, hq)
    url = f"/api/v1/members/{member_id}"
    _refused(client.patch(url, json={"name": " \u3000 "}, headers=hq), "name")
    named = client.patch(url, json={"name": "  陈静 "}, headers=hq)
    assert named.status_code == 200, named.text
    assert named.json()["name"] == "陈静"


@pytest.mark.parametrize("days_from_today", [2, 365])
def test_a_birthday_in_the_future_is_a_422_naming_birthday(
    client: TestClient, hq: dict[str, str], days_from_today: int
) -> None:
    member_id = _member(client, hq)
    born = (utcnow() + timedelta(days=days_from_today)).date().isoformat()
    _refused(
        client.patch(f"/api/v1/members/{member_id}", json={"birthday": born}, headers=hq),
        "birthday",
    )


def test_a_birthday_before_1900_is_a_422_naming_birthday_and_a_real_one_is_kept(
    client: TestClient, hq: dict[str, str]
) -> None:
    member_id = _member(client, hq)
    url = f"/api/v1/members/{member_id}"
    _refused(client.patch(url, json={"birthday": "0001-01-01"}, headers=hq), "birthday")
    kept = client.patch(url, json={"birthday": "1992-02-29"}, headers=hq)
    assert kept.status_code == 200, kept.text
    assert kept.json()["birthday"] == "1992-02-29"


def test_registering_with_a_birthday_in_the_future_is_a_422_naming_birthday(
    client: TestClient, hq: dict[str, str]
) -> None:
    born = (utcnow() + timedelta(days=30)).date().isoformat()
    r = client.post(
        IDENTIFY, json={"kind": "phone", "value": new_phone(), "birthday": born}, headers=hq
    )
    _refused(r, "birthday")
