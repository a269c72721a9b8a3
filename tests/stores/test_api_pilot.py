"""Pilot rollout over HTTP: HQ switches features per region, store and category; anyone asks."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.stores.conftest import MakeCategory
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.stores import service
from zhongtai.stores.models import Capability, Location

RULES = "/api/v1/pilot/rules"
CHECK = "/api/v1/pilot/check"


def delivering_store(session: Session, factory: Factory, region: str) -> Location:
    store = factory.location(region=region)
    service.set_capability(session, store.id, Capability.DELIVERY, delivery_radius_m=3000)
    session.commit()
    return store


def test_region_pilot_with_one_store_held_back_explains_each_answer(
    client: TestClient, factory: Factory, session: Session
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    in_pilot = delivering_store(session, factory, "区域A")
    held_back = delivering_store(session, factory, "区域A")
    elsewhere = delivering_store(session, factory, "区域B")
    r = client.put(
        RULES,
        json={"feature": "delivery", "scope": "region", "scope_value": "区域A", "enabled": True},
        headers=hq,
    )
    assert r.status_code == 200, r.text
    r = client.put(
        RULES,
        json={
            "feature": "delivery",
            "scope": "store",
            "scope_value": str(held_back.id),
            "enabled": False,
            "note": "rider shortage",
        },
        headers=hq,
    )
    assert r.status_code == 200, r.text

    def check(store: Location) -> dict[str, object]:
        answer = client.get(
            CHECK, params={"feature": "delivery", "store_id": str(store.id)}, headers=hq
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    assert check(in_pilot) == {
        "feature": "delivery",
        "store_id": str(in_pilot.id),
        "category_id": None,
        "enabled": True,
        "reason": "region rule turns delivery on for region 区域A",
    }
    held = check(held_back)
    assert held["enabled"] is False
    assert held["reason"] == f"store rule turns delivery off for store {held_back.id}"
    assert check(elsewhere)["enabled"] is False
    stores = client.get("/api/v1/pilot/stores", params={"feature": "delivery"}, headers=hq)
    assert stores.json()["store_ids"] == [str(in_pilot.id)]


def test_a_category_rule_switches_delivery_off_for_a_subtree(
    client: TestClient, factory: Factory, session: Session, make_category: MakeCategory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = delivering_store(session, factory, "区域C")
    fresh = make_category("生鲜")
    seafood = make_category("水产", fresh)
    session.commit()
    for body in (
        {"feature": "delivery", "scope": "chain", "enabled": True},
        {
            "feature": "delivery",
            "scope": "category",
            "scope_value": str(fresh.id),
            "enabled": False,
        },
    ):
        assert client.put(RULES, json=body, headers=hq).status_code == 200
    params = {"feature": "delivery", "store_id": str(store.id), "category_id": str(seafood.id)}
    answer = client.get(CHECK, params=params, headers=hq).json()
    assert answer["enabled"] is False
    assert f"set on its ancestor {fresh.id}" in answer["reason"]
    params.pop("category_id")
    assert client.get(CHECK, params=params, headers=hq).json()["enabled"] is True


def test_putting_a_rule_again_updates_it_and_it_can_be_deleted(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"feature": "guide_commission", "scope": "chain", "scope_value": "*", "enabled": True}
    first = client.put(RULES, json=body, headers=hq).json()
    second = client.put(RULES, json={**body, "enabled": False}, headers=hq).json()
    assert second["id"] == first["id"] and second["enabled"] is False
    listed = client.get(RULES, params={"feature": "guide_commission"}, headers=hq).json()
    assert [r["id"] for r in listed["items"]] == [first["id"]]
    assert client.delete(f"{RULES}/{first['id']}", headers=hq).status_code == 204
    assert client.delete(f"{RULES}/{first['id']}", headers=hq).status_code == 404
    listed = client.get(RULES, params={"feature": "guide_commission"}, headers=hq).json()
    assert listed["items"] == []


def test_a_rule_for_an_unknown_region_is_a_422_naming_scope_value(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"feature": "delivery", "scope": "region", "scope_value": "火星", "enabled": True}
    r = client.put(RULES, json=body, headers=hq)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "scope_value"


def test_only_hq_writes_pilot_rules_but_store_staff_may_read_and_check_their_store(
    client: TestClient, factory: Factory
) -> None:
    mine, other = factory.location(), factory.location()
    manager = factory.staff_headers(Role.STORE_MANAGER, [mine])
    body = {"feature": "delivery", "scope": "store", "scope_value": str(mine.id), "enabled": True}
    refused = client.put(RULES, json=body, headers=manager)
    assert refused.status_code == 403
    assert client.get(RULES, headers=manager).status_code == 200
    own = client.get(
        CHECK, params={"feature": "delivery", "store_id": str(mine.id)}, headers=manager
    )
    assert own.status_code == 200
    foreign = client.get(
        CHECK, params={"feature": "delivery", "store_id": str(other.id)}, headers=manager
    )
    assert foreign.status_code == 403
    assert foreign.json()["type"].endswith("/store-out-of-scope")


def test_a_badly_named_feature_is_a_422(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    r = client.get(CHECK, params={"feature": "DROP TABLE", "store_id": str(store.id)}, headers=hq)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "query.feature"


def test_store_staff_listing_pilot_rules_see_no_other_stores_rules(
    client: TestClient, factory: Factory
) -> None:
    """Lists are filtered to a store-bound caller's stores (api-conventions): the rule of
    another store (its id, whether it pilots a feature) used to be listed to every clerk."""
    mine, other = factory.location(region="静安区"), factory.location(region="静安区")
    hq = factory.staff_headers(Role.HQ_ADMIN)
    for body in (
        {"scope": "store", "scope_value": str(mine.id), "enabled": True},
        {"scope": "store", "scope_value": str(other.id), "enabled": False},
        {"scope": "region", "scope_value": "静安区", "enabled": True},
        {"scope": "chain", "enabled": False},
    ):
        r = client.put(RULES, json={"feature": "staff_list_test", **body}, headers=hq)
        assert r.status_code == 200, r.text
    params = {"feature": "staff_list_test"}

    def listed(headers: dict[str, str]) -> set[str]:
        r = client.get(RULES, params=params, headers=headers)
        assert r.status_code == 200, r.text
        return {rule["scope_value"] for rule in r.json()["items"]}

    assert listed(hq) == {str(mine.id), str(other.id), "静安区", "*"}
    manager = factory.staff_headers(Role.STORE_MANAGER, [mine])
    assert listed(manager) == {str(mine.id), "静安区", "*"}
    assert listed(factory.api_key_headers(Channel.POS, store=other)) == {
        str(other.id),
        "静安区",
        "*",
    }
