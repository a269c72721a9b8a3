"""The guide's customer list pages by the moment each was bound: the cursor it hands out carries
that moment and pages on; a forged one answers 422 naming ``cursor``, on both databases."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.guides.conftest import EnrollGuide
from tests.members.conftest import MakeMember
from zhongtai.core.clock import utcnow
from zhongtai.guides import binding
from zhongtai.guides.binding_rules import BindingSource

CUSTOMERS = "/api/v1/guides/me/customers"


def forged(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_a_handed_out_cursor_pages_through_every_customer_once_longest_bound_first(
    client: TestClient,
    session: Session,
    factory: Factory,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
) -> None:
    guide = enroll_guide(factory.location())
    # One day, two of them bound in the same instant: the cursor must order within a day and
    # break a tie by the binding.
    morning = (utcnow() - timedelta(days=2)).replace(hour=1, minute=0, second=0, microsecond=0)
    bound = [make_member().id for _ in range(5)]
    for hours, member_id in zip((0, 1, 1, 2, 3), bound, strict=True):
        binding.touch_member(
            session,
            member_id,
            guide.guide.staff_id,
            BindingSource.WECOM,
            at=morning + timedelta(hours=hours),
        )
    session.commit()

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = client.get(CUSTOMERS, params=params, headers=guide.headers)
        assert answer.status_code == 200, answer.text
        seen += [c["member_id"] for c in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(m) for m in bound]


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param("2026-03-01T08:00:00", id="no-offset"),
        pytest.param("0001-01-01T00:00:00+14:00", id="before-year-one-in-utc"),
        pytest.param("2026-03-01T08:00:00+00:00\x00", id="nul-after-the-moment"),
        pytest.param("tomorrow", id="not-a-moment"),
        pytest.param(1772352000, id="a-number"),
        pytest.param(None, id="null"),
    ],
)
def test_forged_customer_cursor_with_a_moment_the_database_cannot_compare_is_a_422_naming_cursor(
    client: TestClient, factory: Factory, enroll_guide: EnrollGuide, moment: Any
) -> None:
    guide = enroll_guide(factory.location())
    answer = client.get(
        CUSTOMERS,
        params={"cursor": forged([moment, str(uuid.uuid4())])},
        headers=guide.headers,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == ["cursor"]
