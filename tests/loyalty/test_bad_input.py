"""Bad input to the loyalty endpoints is a 422 problem+json naming the field, never a 500:
text with NUL or control characters (PostgreSQL refuses NUL), numbers beyond what the 32-bit
columns hold, dates without an offset. And it changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import MakeMember
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.loyalty.models import CouponTemplate, EarnRule, PointsEntry, Promotion

TEMPLATE = {"code": "C20", "name": "满100减20", "kind": "amount_off", "value": 2_000}
PROMOTION = {"code": "P10", "name": "九折", "kind": "percent_off", "terms": {"percent": 10}}
CAMPAIGN = {
    "kind": "campaign",
    "name": "双11 积分翻倍",
    "multiplier_pct": 200,
    "starts_at": "2026-01-01T00:00:00+08:00",
    "ends_at": "2099-01-01T00:00:00+08:00",
}
SALE = {"source_type": "pos_sale", "source_id": "SH001-T01-000001"}

# The route, the body, the field the 422 names, and the table it must leave untouched.
CASES = [
    pytest.param(
        "/coupon-templates",
        {**TEMPLATE, "name": "满减\x00"},
        "name",
        CouponTemplate,
        id="template name with NUL",
    ),
    pytest.param(
        "/coupon-templates",
        {**TEMPLATE, "value": 10**12},
        "value",
        CouponTemplate,
        id="template value beyond 32 bits",
    ),
    pytest.param(
        "/coupon-templates",
        {**TEMPLATE, "threshold_fen": 10**12},
        "threshold_fen",
        CouponTemplate,
        id="template threshold beyond 32 bits",
    ),
    pytest.param(
        "/coupon-templates",
        {**TEMPLATE, "total_limit": 10**12},
        "total_limit",
        CouponTemplate,
        id="template total beyond 32 bits",
    ),
    pytest.param(
        "/promotions",
        {**PROMOTION, "name": "九折\x00"},
        "name",
        Promotion,
        id="promotion name with NUL",
    ),
    pytest.param(
        "/promotions",
        {**PROMOTION, "starts_at": "2030-01-01T00:00:00"},
        "starts_at",
        Promotion,
        id="promotion start without offset",
    ),
    pytest.param(
        "/promotions",
        {**PROMOTION, "ends_at": "2030-01-01T00:00:00"},
        "ends_at",
        Promotion,
        id="promotion end without offset",
    ),
    pytest.param(
        "/points/earn-rules",
        {**CAMPAIGN, "name": "翻倍\x00"},
        "name",
        EarnRule,
        id="earn rule name with NUL",
    ),
    pytest.param(
        "/points/earn-rules",
        {**CAMPAIGN, "name": "翻倍\x07"},
        "name",
        EarnRule,
        id="earn rule name with a bell",
    ),
    pytest.param(
        "{member}/adjust",
        {"reference": "R1", "points": 5, "reason": "补\x00"},
        "reason",
        PointsEntry,
        id="adjustment reason with NUL",
    ),
    pytest.param(
        "{member}/earn",
        {**SALE, "lines": [{"net_fen": 10**12}]},
        "lines.0.net_fen",
        PointsEntry,
        id="a line beyond any sale",
    ),
    pytest.param(
        "{member}/earn",
        {**SALE, "lines": [{"net_fen": 900_000_000}] * 3},
        "lines",
        PointsEntry,
        id="lines beyond any sale together",
    ),
]


@pytest.mark.parametrize(("path", "body", "field", "table"), CASES)
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(
    app: FastAPI,
    factory: Factory,
    make_member: MakeMember,
    session: Session,
    path: str,
    body: dict[str, Any],
    field: str,
    table: type,
) -> None:
    member = make_member()
    session.commit()
    headers = factory.staff_headers(Role.HQ_ADMIN)
    with TestClient(app, raise_server_exceptions=False) as client:
        url = "/api/v1" + path.format(member=f"/members/{member.id}/points")
        answer = client.post(url, json=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert session.scalar(select(func.count()).select_from(table)) == 0


def test_a_basket_of_more_units_than_a_checkout_takes_is_a_422_at_the_till(
    client: TestClient, factory: Factory
) -> None:
    till = factory.api_key_headers(Channel.POS, store=factory.location())
    body = {"channel": "pos", "lines": [{"unit_price": 100, "quantity": 10**20}]}
    answer = client.post("/api/v1/offers/price", json=body, headers=till)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["lines.0.quantity"]
