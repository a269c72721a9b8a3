"""On PostgreSQL, clients changing the same pilot rule at once: of those deleting it, one
deletes it and the others answer 404 as they would after it; of those putting it, every one
gets the rule and the audit log holds one entry per change that happened."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.live_server import LiveServer
from tests.races import (
    MANY_CONNECTIONS,
    hq_admin_headers,
    race_server,
    requests_at_once,
    until_another_backend_waits_for_a_lock,
)
from zhongtai.core.audit import AuditEntry
from zhongtai.core.errors import NotFound
from zhongtai.stores import service, service_pilot
from zhongtai.stores.models import LocationKind, PilotRule, PilotScope

pytestmark = MANY_CONNECTIONS
CLIENTS = 16


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with race_server("zt_pilot_rules") as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> dict[str, str]:
    return hq_admin_headers(server.db, "pilot-admin")


def _store(server: LiveServer) -> uuid.UUID:
    with server.db.writer() as s, s.begin():
        store = service.create_location(
            s,
            code=f"PR{uuid.uuid4().hex[:6]}",
            name="race",
            kind=LocationKind.STORE,
            region="r",
            city="c",
            address="a",
            latitude=31.0,
            longitude=121.0,
            timezone="Asia/Shanghai",
        )
        return store.id


def _rule(server: LiveServer, store_id: uuid.UUID) -> uuid.UUID:
    """Delivery switched on in the store."""
    with server.db.writer() as s, s.begin():
        rule = service_pilot.upsert_pilot_rule(
            s, feature="delivery", scope=PilotScope.STORE, scope_value=str(store_id), enabled=True
        )
        return rule.id


def _audited(server: LiveServer, rule_id: uuid.UUID) -> list[str]:
    with server.db.reader() as s:
        return list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.subject_type == "pilot_rule")
                .where(AuditEntry.subject_id == str(rule_id))
                .order_by(AuditEntry.id)
            )
        )


def _end(holder: Session, pool: ThreadPoolExecutor, *clients: Session) -> None:
    """Close what a race left open, also when it failed half-way: the holder's locks go first
    (a commit before stays), so that the client thread, which may wait on them, can end; then
    the sessions that thread used."""
    for session in (holder, *clients):
        if session is not holder:
            pool.shutdown(wait=True)
        session.rollback()
        session.close()
    pool.shutdown(wait=True)


def test_sixteen_clients_deleting_one_rule_one_gets_204_the_rest_404_and_one_audit_entry(
    server: LiveServer, admin: dict[str, str]
) -> None:
    """The deletes that waited for the first used to find the row gone and answer 204 as well
    (SQLAlchemy only warns that the DELETE matched no row): several clients were told they
    deleted it."""
    rule_id = _rule(server, _store(server))
    url = f"{server.url}/api/v1/pilot/rules/{rule_id}"
    responses = requests_at_once([lambda c: c.delete(url, headers=admin)] * CLIENTS)
    codes = sorted(r.status_code for r in responses)
    assert codes == [204] + [404] * (CLIENTS - 1), [r.text for r in responses]
    assert all(r.json()["type"].endswith("/not-found") for r in responses if r.status_code == 404)
    assert _audited(server, rule_id) == ["pilot_rule.created", "pilot_rule.deleted"]


def test_a_delete_waiting_for_another_that_deleted_the_rule_answers_404(
    server: LiveServer,
) -> None:
    """The second client read the rule before the first deleted it and reached the row after:
    it must neither fail on the vanished row nor claim a deletion of its own."""
    rule_id = _rule(server, _store(server))
    first, second = server.db.writer(), server.db.writer()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        first.begin()
        service_pilot.delete_pilot_rule(first, rule_id)
        own_pid = first.execute(text("SELECT pg_backend_pid()")).scalar_one()
        second.begin()
        assert second.get(PilotRule, rule_id) is not None  # read while it still stood
        waiting = pool.submit(service_pilot.delete_pilot_rule, second, rule_id)
        until_another_backend_waits_for_a_lock(server.db, own_pid)
        first.commit()
        with pytest.raises(NotFound):
            waiting.result(timeout=30)
    finally:
        _end(first, pool, second)
    assert _audited(server, rule_id) == ["pilot_rule.created", "pilot_rule.deleted"]


def test_sixteen_clients_putting_the_same_new_rule_all_get_it_and_one_creation_is_audited(
    server: LiveServer, admin: dict[str, str]
) -> None:
    store_id = _store(server)
    body = {"feature": "pickup", "scope": "store", "scope_value": str(store_id), "enabled": True}
    url = f"{server.url}/api/v1/pilot/rules"

    def put(c: httpx.Client) -> httpx.Response:
        return c.put(url, json=body, headers=admin)

    responses = requests_at_once([put] * CLIENTS)
    assert [r.status_code for r in responses] == [200] * CLIENTS, [r.text for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    with server.db.reader() as s:
        count = s.scalar(
            select(func.count())
            .select_from(PilotRule)
            .where(PilotRule.feature == "pickup", PilotRule.scope_value == str(store_id))
        )
    assert count == 1
    assert _audited(server, uuid.UUID(ids.pop())) == ["pilot_rule.created"]


def test_a_change_waiting_for_a_delete_of_its_rule_creates_the_rule_afresh(
    server: LiveServer,
) -> None:
    """The rule the change would have changed is gone once it gets there: what it makes is a
    new rule, audited as created from nothing rather than as a change of the deleted one."""
    store_id = _store(server)
    rule_id = _rule(server, store_id)

    def switch_off() -> uuid.UUID:
        with server.db.writer() as s, s.begin():
            rule = service_pilot.upsert_pilot_rule(
                s,
                feature="delivery",
                scope=PilotScope.STORE,
                scope_value=str(store_id),
                enabled=False,
            )
            return rule.id

    first = server.db.writer()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        first.begin()
        service_pilot.delete_pilot_rule(first, rule_id)
        own_pid = first.execute(text("SELECT pg_backend_pid()")).scalar_one()
        waiting = pool.submit(switch_off)
        until_another_backend_waits_for_a_lock(server.db, own_pid)
        first.commit()
        new_id = waiting.result(timeout=30)
    finally:
        _end(first, pool)
    assert new_id != rule_id
    assert _audited(server, rule_id) == ["pilot_rule.created", "pilot_rule.deleted"]
    with server.db.reader() as s:
        [created] = s.scalars(select(AuditEntry).where(AuditEntry.subject_id == str(new_id))).all()
        assert created.action == "pilot_rule.created"
        assert created.before is None
        assert created.after is not None and created.after["enabled"] is False
        assert created.store_id == store_id
