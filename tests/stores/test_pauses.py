"""A store manager pauses delivery (or pickup, or parcels) for a while, with a reason: checkout
passes the store by meanwhile and says why, until the pause ends by itself or she resumes.
Audited; her own stores only; a day ahead at most."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.catalog.conftest import catalog as catalog  # the order tests' fixtures
from tests.orders.conftest import NEARBY, Chain, ok
from tests.orders.conftest import chain as chain
from tests.orders.conftest import stock as stock
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.outbox import OutboxEvent
from zhongtai.stores import pauses
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability

REASON = "两位拣货员病假"


def _manager(chain: Chain) -> dict[str, str]:
    return chain.factory.staff_headers(Role.STORE_MANAGER, [chain.store])


def _pause(
    client: TestClient, chain: Chain, capability: str, until: datetime, headers: Any = None
) -> Any:
    return client.post(
        f"/api/v1/stores/{chain.store.id}/capabilities/{capability}/pause",
        json={"until": until.isoformat(), "reason": REASON},
        headers=headers or _manager(chain),
    )


def _quote(client: TestClient, chain: Chain, kind: str) -> Any:
    body: dict[str, Any] = {"fulfillment_type": kind, "lines": chain.basket(1)}
    if kind == "delivery":
        body["address"] = NEARBY
    else:
        body["store_id"] = str(chain.store.id)
    return client.post("/api/v1/checkout/quotes", json=body, headers=chain.app)


def _reasons(refused: Any) -> list[str]:
    return [r for c in refused.json()["sourcing"]["candidates"] for r in c["reasons"]]


def _capability(client: TestClient, chain: Chain, capability: str) -> Any:
    store = ok(client.get(f"/api/v1/stores/{chain.store.id}", headers=chain.hq))
    return next(c for c in store["capabilities"] if c["capability"] == capability)


def test_a_paused_delivery_is_refused_saying_why_and_taken_again_once_resumed(
    client: TestClient, chain: Chain
) -> None:
    until = utcnow() + timedelta(hours=2)
    paused = ok(_pause(client, chain, "delivery", until))
    assert (paused["paused"], paused["pause_reason"]) == (True, REASON)
    assert _capability(client, chain, "delivery")["paused"] is True

    refused = _quote(client, chain, "delivery")
    assert refused.status_code == 409
    assert _reasons(refused) == ["paused"]
    assert "paused by the store until" in refused.json()["sourcing"]["candidates"][0]["explanation"]
    assert _quote(client, chain, "pickup").status_code == 201  # only delivery is paused

    resumed = ok(
        client.delete(
            f"/api/v1/stores/{chain.store.id}/capabilities/delivery/pause",
            headers=_manager(chain),
        )
    )
    assert (resumed["paused"], resumed["paused_until"]) == (False, None)
    assert _quote(client, chain, "delivery").status_code == 201


def test_a_pause_ends_by_itself_at_its_moment(
    client: TestClient, chain: Chain, session: Session
) -> None:
    earlier = utcnow() - timedelta(hours=2)
    pauses.pause_capability(
        session,
        chain.store.id,
        Capability.DELIVERY,
        until=earlier + timedelta(hours=1),
        reason=REASON,
        now=earlier,
    )
    session.commit()

    assert _capability(client, chain, "delivery")["paused"] is False
    assert _quote(client, chain, "delivery").status_code == 201


def test_a_paused_pickup_counter_takes_no_try_on_bookings_either(
    client: TestClient, chain: Chain
) -> None:
    ok(_pause(client, chain, "pickup", utcnow() + timedelta(hours=1)))
    assert _reasons(_quote(client, chain, "reserve_try")) == ["paused"]


def test_pauses_and_resumes_are_audited_and_announced_under_the_store(
    client: TestClient, chain: Chain, session: Session
) -> None:
    until = utcnow() + timedelta(hours=1)
    ok(_pause(client, chain, "ship_from_store", until))
    ok(
        client.delete(
            f"/api/v1/stores/{chain.store.id}/capabilities/ship_from_store/pause",
            headers=_manager(chain),
        )
    )
    ok(  # resuming again changes nothing and records nothing
        client.delete(
            f"/api/v1/stores/{chain.store.id}/capabilities/ship_from_store/pause",
            headers=_manager(chain),
        )
    )
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject_id == f"{chain.store.id}:ship_from_store")
        .order_by(AuditEntry.id)
    ).all()
    assert [(e.action, e.store_id) for e in entries] == [
        ("capability.paused", chain.store.id),
        ("capability.resumed", chain.store.id),
    ]
    assert entries[0].before is None
    assert entries[0].after == {"until": until.isoformat(), "reason": REASON}
    assert entries[1].after is None
    announced = session.execute(
        select(OutboxEvent.type, OutboxEvent.payload, OutboxEvent.store_id)
        .where(OutboxEvent.aggregate_id == str(chain.store.id))
        .order_by(OutboxEvent.id)
    ).all()
    assert [(kind, store) for kind, _, store in announced] == [
        ("store.capability_paused", chain.store.id),
        ("store.capability_resumed", chain.store.id),
    ]
    paused = announced[0][1]
    assert (paused["capability"], paused["reason"]) == ("ship_from_store", REASON)
    assert datetime.fromisoformat(paused["paused_until"]) == until


@pytest.mark.parametrize(
    ("capability", "ahead", "status", "field"),
    [
        ("delivery", timedelta(minutes=-1), 422, "until"),
        ("delivery", timedelta(hours=25), 422, "until"),
        ("in_store_services", timedelta(hours=1), 422, "capability"),
    ],
)
def test_a_pause_in_the_past_over_a_day_or_of_what_takes_no_orders_is_refused(
    client: TestClient, chain: Chain, capability: str, ahead: timedelta, status: int, field: str
) -> None:
    refused = _pause(client, chain, capability, utcnow() + ahead)
    assert refused.status_code == status
    assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert _capability(client, chain, "delivery")["paused"] is False


def test_a_capability_the_store_lacks_cannot_be_paused(
    client: TestClient, chain: Chain, session: Session
) -> None:
    stores.remove_capability(session, chain.store.id, Capability.SHIP_FROM_STORE)
    session.commit()
    assert (
        _pause(client, chain, "ship_from_store", utcnow() + timedelta(hours=1)).status_code == 404
    )


def test_only_a_manager_of_the_store_or_hq_pauses_it(client: TestClient, chain: Chain) -> None:
    until = utcnow() + timedelta(hours=1)
    elsewhere = chain.factory.staff_headers(Role.STORE_MANAGER, [chain.open_store()])
    assert _pause(client, chain, "delivery", until, elsewhere).status_code == 403
    assert _pause(client, chain, "delivery", until, chain.clerk).status_code == 403
    assert _pause(client, chain, "delivery", until, chain.hq).status_code == 200
