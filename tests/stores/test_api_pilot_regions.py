"""A region rule is about the stores of the region: a region of only warehouses and DCs has
none for it to switch, while a region whose stores are closed for now may be set up ahead of
their reopening."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Factory
from zhongtai.core.auth.roles import Role
from zhongtai.stores import service
from zhongtai.stores.models import LocationKind, LocationStatus

RULES = "/api/v1/pilot/rules"
CHECK = "/api/v1/pilot/check"


def test_a_region_of_only_warehouses_and_dcs_gets_no_rule_a_422_naming_scope_value(
    client: TestClient, factory: Factory, session: Session
) -> None:
    factory.location(region="仓储园区", kind=LocationKind.WAREHOUSE)
    factory.location(region="仓储园区", kind=LocationKind.DC)
    session.commit()
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"feature": "delivery", "scope": "region", "scope_value": "仓储园区", "enabled": True}
    r = client.put(RULES, json=body, headers=hq)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("/validation-error")
    assert problem["errors"][0]["field"] == "scope_value"
    assert "no store is in region '仓储园区'" in problem["errors"][0]["message"]
    assert client.get(RULES, params={"feature": "delivery"}, headers=hq).json()["items"] == []


def test_a_region_whose_stores_are_all_closed_may_get_a_rule_ahead_of_their_reopening(
    client: TestClient, factory: Factory, session: Session
) -> None:
    store = factory.location(region="翻新区")
    factory.location(region="翻新区", kind=LocationKind.WAREHOUSE)
    service.update_location(session, store.id, status=LocationStatus.CLOSED)
    session.commit()
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {
        "feature": "guide_commission",
        "scope": "region",
        "scope_value": "翻新区",
        "enabled": True,
    }
    r = client.put(RULES, json=body, headers=hq)
    assert r.status_code == 200, r.text
    params = {"feature": "guide_commission", "store_id": str(store.id)}
    assert client.get(CHECK, params=params, headers=hq).json()["enabled"] is False
    service.update_location(session, store.id, status=LocationStatus.ACTIVE)
    session.commit()
    reopened = client.get(CHECK, params=params, headers=hq).json()
    assert reopened["enabled"] is True
    assert reopened["reason"] == "region rule turns guide_commission on for region 翻新区"
