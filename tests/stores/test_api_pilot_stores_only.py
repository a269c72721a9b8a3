"""Pilot flags are about stores: warehouses and DCs are never listed, checked on, or targeted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Factory
from zhongtai.core.auth.roles import Role
from zhongtai.stores import service
from zhongtai.stores.models import Capability, LocationKind

RULES = "/api/v1/pilot/rules"
CHECK = "/api/v1/pilot/check"
STORES = "/api/v1/pilot/stores"


def test_a_chain_wide_pilot_lists_the_stores_but_no_warehouse_or_dc(
    client: TestClient, factory: Factory, session: Session
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location(region="区域W")
    warehouse = factory.location(region="区域W", kind=LocationKind.WAREHOUSE)
    dc = factory.location(region="区域W", kind=LocationKind.DC)
    session.commit()
    body = {"feature": "guide_commission", "scope": "chain", "enabled": True}
    assert client.put(RULES, json=body, headers=hq).status_code == 200
    r = client.get(STORES, params={"feature": "guide_commission"}, headers=hq)
    assert r.status_code == 200, r.text
    assert r.json()["store_ids"] == [str(store.id)], (warehouse.id, dc.id)


def test_a_dc_that_delivers_is_not_listed_among_the_delivery_pilot_stores(
    client: TestClient, factory: Factory, session: Session
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location(region="区域D")
    dc = factory.location(region="区域D", kind=LocationKind.DC)
    for location in (store, dc):
        service.set_capability(session, location.id, Capability.DELIVERY, delivery_radius_m=5000)
    session.commit()
    body = {"feature": "delivery", "scope": "region", "scope_value": "区域D", "enabled": True}
    assert client.put(RULES, json=body, headers=hq).status_code == 200
    r = client.get(STORES, params={"feature": "delivery"}, headers=hq)
    assert r.status_code == 200, r.text
    assert r.json()["store_ids"] == [str(store.id)], dc.id


@pytest.mark.parametrize("kind", [LocationKind.WAREHOUSE, LocationKind.DC])
def test_a_store_rule_naming_a_warehouse_or_dc_is_a_422_naming_scope_value(
    client: TestClient, factory: Factory, session: Session, kind: LocationKind
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    location = factory.location(kind=kind)
    session.commit()
    body = {
        "feature": "guide_commission",
        "scope": "store",
        "scope_value": str(location.id),
        "enabled": True,
    }
    r = client.put(RULES, json=body, headers=hq)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("/validation-error")
    assert problem["errors"][0]["field"] == "scope_value"
    assert f"{location.code} is a {kind.value}, not a store" in problem["errors"][0]["message"]
    listed = client.get(RULES, params={"feature": "guide_commission"}, headers=hq).json()
    assert listed["items"] == []


def test_checking_a_feature_on_a_warehouse_answers_off_because_it_is_no_store(
    client: TestClient, factory: Factory, session: Session
) -> None:
    """The check agrees with the list of pilot stores, which leaves warehouses out."""
    hq = factory.staff_headers(Role.HQ_ADMIN)
    warehouse = factory.location(kind=LocationKind.WAREHOUSE)
    session.commit()
    body = {"feature": "guide_commission", "scope": "chain", "enabled": True}
    assert client.put(RULES, json=body, headers=hq).status_code == 200
    params = {"feature": "guide_commission", "store_id": str(warehouse.id)}
    r = client.get(CHECK, params=params, headers=hq)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["enabled"] is False
    assert answer["reason"] == f"location {warehouse.id} is a warehouse, not a store"
