"""Pilot rules roll O2O features out store by store: who switched what, where, from what to
what, is in the audit log like every other admin change (a PUT that changes nothing is no
change and leaves no entry)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.stores.conftest import MakeCategory
from zhongtai.core.auth.roles import Role

RULES = "/api/v1/pilot/rules"
AUDIT = "/api/v1/audit"


def _actor(client: TestClient, headers: dict[str, str]) -> str:
    me = client.get("/api/v1/auth/me", headers=headers).json()
    return f"staff:{me['id']}"


def _audit(client: TestClient, headers: dict[str, str], rule_id: str) -> list[dict[str, Any]]:
    r = client.get(
        AUDIT, params={"subject_type": "pilot_rule", "subject_id": rule_id}, headers=headers
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _put(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = client.put(RULES, json=body, headers=headers)
    assert r.status_code == 200, r.text
    rule: dict[str, Any] = r.json()
    return rule


def test_switching_delivery_on_in_a_store_is_audited_with_the_actor_and_the_store(
    client: TestClient, factory: Factory, session: Session
) -> None:
    store = factory.location()
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {
        "feature": "delivery",
        "scope": "store",
        "scope_value": str(store.id),
        "enabled": True,
        "note": "first wave",
    }
    rule = _put(client, hq, body)
    [entry] = _audit(client, hq, rule["id"])
    assert entry["action"] == "pilot_rule.created"
    assert entry["actor"] == _actor(client, hq)
    assert entry["store_id"] == str(store.id)
    assert entry["before"] is None
    assert entry["after"] == {
        "feature": "delivery",
        "scope": "store",
        "scope_value": str(store.id),
        "enabled": True,
        "note": "first wave",
    }
    # Whoever audits one store finds the rollout of that store under its id.
    by_store = client.get(
        AUDIT, params={"store_id": str(store.id), "action": "pilot_rule.created"}, headers=hq
    ).json()["items"]
    assert [e["subject_id"] for e in by_store] == [rule["id"]]


def test_changing_a_rule_is_audited_with_what_it_was_and_what_it_became(
    client: TestClient, factory: Factory, session: Session
) -> None:
    store = factory.location()
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"feature": "delivery", "scope": "store", "scope_value": str(store.id), "enabled": True}
    rule = _put(client, hq, body)
    other_admin = factory.staff_headers(Role.HQ_ADMIN)
    changed = _put(client, other_admin, {**body, "enabled": False, "note": "rider shortage"})
    assert changed["id"] == rule["id"]
    entries = _audit(client, hq, rule["id"])
    assert [e["action"] for e in entries] == ["pilot_rule.created", "pilot_rule.changed"]
    change = entries[1]
    assert change["actor"] == _actor(client, other_admin)
    assert change["store_id"] == str(store.id)
    assert (change["before"]["enabled"], change["before"]["note"]) == (True, None)
    assert (change["after"]["enabled"], change["after"]["note"]) == (False, "rider shortage")


def test_a_put_that_changes_nothing_writes_no_audit_entry_and_keeps_the_rule_as_it_was(
    client: TestClient, factory: Factory
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"feature": "guide_commission", "scope": "chain", "enabled": True, "note": "all in"}
    rule = _put(client, hq, body)
    again = _put(client, hq, {**body, "scope_value": "*"})
    assert again == rule  # same id, same updated_at: nothing was written
    assert [e["action"] for e in _audit(client, hq, rule["id"])] == ["pilot_rule.created"]


def test_only_the_note_changing_is_a_change(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"feature": "guide_commission", "scope": "chain", "enabled": True}
    rule = _put(client, hq, body)
    _put(client, hq, {**body, "note": "go-live 12-01"})
    entries = _audit(client, hq, rule["id"])
    assert [e["action"] for e in entries] == ["pilot_rule.created", "pilot_rule.changed"]
    assert (entries[1]["before"]["note"], entries[1]["after"]["note"]) == (None, "go-live 12-01")


def test_deleting_a_rule_is_audited_with_what_it_was_and_a_second_delete_adds_nothing(
    client: TestClient, factory: Factory
) -> None:
    store = factory.location()
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"feature": "pickup", "scope": "store", "scope_value": str(store.id), "enabled": False}
    rule = _put(client, hq, body)
    assert client.delete(f"{RULES}/{rule['id']}", headers=hq).status_code == 204
    assert client.delete(f"{RULES}/{rule['id']}", headers=hq).status_code == 404
    entries = _audit(client, hq, rule["id"])
    assert [e["action"] for e in entries] == ["pilot_rule.created", "pilot_rule.deleted"]
    deleted = entries[1]
    assert deleted["actor"] == _actor(client, hq)
    assert deleted["store_id"] == str(store.id)
    assert deleted["before"] == {
        "feature": "pickup",
        "scope": "store",
        "scope_value": str(store.id),
        "enabled": False,
        "note": None,
    }
    assert deleted["after"] is None


def test_chain_region_and_category_rules_are_audited_without_a_store(
    client: TestClient, factory: Factory, session: Session, make_category: MakeCategory
) -> None:
    factory.location(region="区域审计")
    fresh = make_category("生鲜")
    session.commit()
    hq = factory.staff_headers(Role.HQ_ADMIN)
    for scope, value in (("chain", "*"), ("region", "区域审计"), ("category", str(fresh.id))):
        rule = _put(
            client,
            hq,
            {"feature": "delivery", "scope": scope, "scope_value": value, "enabled": True},
        )
        [entry] = _audit(client, hq, rule["id"])
        assert entry["action"] == "pilot_rule.created"
        assert entry["store_id"] is None
        assert (entry["after"]["scope"], entry["after"]["scope_value"]) == (scope, value)


def test_a_refused_put_or_delete_writes_no_audit_entry(
    client: TestClient, factory: Factory
) -> None:
    mine = factory.location()
    manager = factory.staff_headers(Role.STORE_MANAGER, [mine])
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"feature": "delivery", "scope": "store", "scope_value": str(mine.id), "enabled": True}
    assert client.put(RULES, json=body, headers=manager).status_code == 403
    missing = {**body, "scope": "region", "scope_value": "无此区域"}
    assert client.put(RULES, json=missing, headers=hq).status_code == 422
    rule = _put(client, hq, body)
    assert client.delete(f"{RULES}/{rule['id']}", headers=manager).status_code == 403
    r = client.get(AUDIT, params={"subject_type": "pilot_rule"}, headers=hq)
    assert [e["action"] for e in r.json()["items"]] == ["pilot_rule.created"]
