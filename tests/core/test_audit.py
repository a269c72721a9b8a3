"""Sensitive changes leave an append-only audit trail: who, what, before/after, which request;
neither the app nor raw SQL can change or remove an entry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from zhongtai.core import context
from zhongtai.core.audit import AuditEntry, AuditLogIsAppendOnly, record_audit
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow

AUDIT = "/api/v1/audit"


def _entries(session: Session, subject_id: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.subject_id == subject_id).order_by(AuditEntry.id)
        )
    )


def _actor(client: TestClient, headers: dict[str, str]) -> str:
    me = client.get("/api/v1/auth/me", headers=headers).json()
    return f"staff:{me['id']}"


def test_an_entry_carries_the_actor_and_request_of_the_change(session: Session) -> None:
    who = context.actor.set("staff:0190aaaa-0000-7000-8000-000000000001")
    rid = context.request_id.set("req-audit-1")
    try:
        entry = record_audit(session, "thing.changed", "thing", "T1", {"a": 1}, {"a": 2})
        session.flush()
    finally:
        context.actor.reset(who)
        context.request_id.reset(rid)
    assert (entry.actor, entry.request_id) == (
        "staff:0190aaaa-0000-7000-8000-000000000001",
        "req-audit-1",
    )
    assert (entry.before, entry.after) == ({"a": 1}, {"a": 2})


def test_the_audit_log_refuses_updates_and_deletes_through_the_app(session: Session) -> None:
    entry = record_audit(session, "thing.changed", "thing", "T2", None, {"a": 1})
    session.flush()
    with pytest.raises(AuditLogIsAppendOnly):
        session.execute(update(AuditEntry).where(AuditEntry.id == entry.id).values(action="x.y"))
    with pytest.raises(AuditLogIsAppendOnly):
        session.execute(delete(AuditEntry).where(AuditEntry.id == entry.id))
    entry.after = {"a": 2}
    with pytest.raises(AuditLogIsAppendOnly):
        session.flush()
    session.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'thing.forged', after = NULL WHERE subject_id = 'T3'",
        "DELETE FROM audit_log WHERE subject_id = 'T3'",
    ],
    ids=["update", "delete"],
)
def test_the_database_refuses_raw_sql_that_rewrites_an_entry(
    session: Session, statement: str
) -> None:
    record_audit(session, "thing.changed", "thing", "T3", None, {"a": 1})
    session.flush()
    with pytest.raises(DBAPIError, match="audit_log is append-only"), session.begin_nested():
        session.execute(text(statement))
    [entry] = _entries(session, "T3")
    assert (entry.action, entry.after) == ("thing.changed", {"a": 1})


@pytest.mark.postgres_only
def test_a_plain_sql_client_of_the_apps_role_cannot_rewrite_or_truncate_history(
    database_url: str,
) -> None:
    """Outside the app entirely: a connection of its own, no ORM, as `psql` would be."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "INSERT INTO audit_log (id, at, action, subject_type, subject_id) "
                "VALUES (gen_random_uuid(), now(), 'thing.changed', 'thing', 'T4')"
            )
            for statement in (
                "UPDATE audit_log SET action = 'thing.forged' WHERE subject_id = 'T4'",
                "DELETE FROM audit_log WHERE subject_id = 'T4'",
                "TRUNCATE audit_log",
            ):
                savepoint = conn.begin_nested()
                with pytest.raises(DBAPIError, match="audit_log is append-only"):
                    conn.exec_driver_sql(statement)
                savepoint.rollback()
            assert (
                conn.exec_driver_sql(
                    "SELECT action FROM audit_log WHERE subject_id = 'T4'"
                ).scalar_one()
                == "thing.changed"
            )
            conn.rollback()
    finally:
        engine.dispose()


def test_an_audit_action_must_be_dotted_lower_case(session: Session) -> None:
    with pytest.raises(ValueError):
        record_audit(session, "PriceChanged", "price", "1", None, None)


def test_price_override_set_and_end_are_audited_with_who_and_request(
    client: TestClient, factory: Factory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    store = factory.location()
    sku = CatalogFactory(session, factory).sku(base_price=1000)
    session.commit()
    r = client.post(
        f"/api/v1/catalog/skus/{sku.id}/prices",
        json={
            "price": 799,
            "store_id": str(store.id),
            "valid_from": (utcnow() - timedelta(minutes=1)).isoformat(),
        },
        headers={**admin, "X-Request-ID": "req-price-1"},
    )
    assert r.status_code == 201, r.text
    override_id = r.json()["id"]
    assert client.delete(f"/api/v1/catalog/prices/{override_id}", headers=admin).status_code == 204
    created, ended = _entries(session, override_id)
    assert created.action == "price_override.created"
    assert created.before is None and created.after is not None
    assert (created.after["price"], created.after["store_id"]) == (799, str(store.id))
    assert created.request_id == "req-price-1"
    assert created.actor == _actor(client, admin)
    assert created.store_id == store.id
    assert ended.action == "price_override.ended"
    assert ended.before is not None and ended.after is not None
    assert ended.before["valid_to"] is None and ended.after["valid_to"] is not None


def test_role_store_and_active_changes_and_key_lifecycle_are_audited(
    client: TestClient, factory: Factory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    home, other = factory.location(), factory.location()
    clerk = factory.staff(Role.STORE_STAFF, [home])
    session.commit()
    r = client.patch(
        f"/api/v1/staff/{clerk.id}",
        json={"role": "store_manager", "store_ids": [str(other.id)], "display_name": "new name"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    [change] = [e for e in _entries(session, str(clerk.id)) if e.action == "staff.access_changed"]
    assert change.before == {"role": "store_staff", "store_ids": [str(home.id)]}
    assert change.after == {"role": "store_manager", "store_ids": [str(other.id)]}
    client.patch(f"/api/v1/staff/{clerk.id}", json={"display_name": "only the name"}, headers=admin)
    assert (
        len([e for e in _entries(session, str(clerk.id)) if e.action == "staff.access_changed"])
        == 1
    )

    key = client.post(
        "/api/v1/api-keys", json={"name": "audited", "channel": "app"}, headers=admin
    ).json()
    client.post(f"/api/v1/api-keys/{key['id']}/revoke", headers=admin)
    made, revoked = _entries(session, key["id"])
    assert (made.action, revoked.action) == ("api_key.created", "api_key.revoked")
    assert made.after is not None and made.after["channel"] == "app"
    assert "secret" not in str(made.after) and key["key"] not in str(made.after)
    assert revoked.before is not None and revoked.after is not None
    assert revoked.before["revoked_at"] is None and revoked.after["revoked_at"] is not None


def test_hq_reads_the_log_filtered_and_page_by_page(
    client: TestClient, factory: Factory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    for n in range(3):
        record_audit(session, "shelf.relabelled", "shelf", "SHELF-9", {"n": n}, {"n": n + 1})
    session.commit()
    first = client.get(AUDIT, params={"subject_id": "SHELF-9", "limit": 2}, headers=admin).json()
    assert [e["before"]["n"] for e in first["items"]] == [0, 1]
    rest = client.get(
        AUDIT,
        params={"subject_id": "SHELF-9", "limit": 2, "cursor": first["next_cursor"]},
        headers=admin,
    ).json()
    assert [e["before"]["n"] for e in rest["items"]] == [2]
    assert rest["next_cursor"] is None
    none = client.get(
        AUDIT, params={"subject_id": "SHELF-9", "action": "shelf.moved"}, headers=admin
    )
    assert none.json()["items"] == []
    naive = client.get(AUDIT, params={"since": "2026-01-01T00:00:00"}, headers=admin)
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "since"


def test_a_store_manager_reads_her_stores_entries_and_not_the_chains_or_another_stores(
    client: TestClient, factory: Factory, session: Session
) -> None:
    home, other = factory.location(), factory.location()
    manager = factory.staff_headers(Role.STORE_MANAGER, [home])
    for store in (home, other):
        record_audit(
            session, "shelf.relabelled", "shelf", "SHELF-8", None, {"n": 1}, store_id=store.id
        )
    record_audit(session, "shelf.relabelled", "shelf", "SHELF-8", None, {"n": 1})  # the chain's
    session.commit()

    mine = client.get(AUDIT, params={"subject_id": "SHELF-8"}, headers=manager).json()
    assert [e["store_id"] for e in mine["items"]] == [str(home.id)]
    elsewhere = client.get(AUDIT, params={"store_id": str(other.id)}, headers=manager)
    assert elsewhere.status_code == 403
    assert elsewhere.json()["type"].endswith("/store-out-of-scope")
    hq = factory.staff_headers(Role.HQ_ADMIN)
    everything = client.get(AUDIT, params={"subject_id": "SHELF-8"}, headers=hq).json()
    assert len(everything["items"]) == 3
