"""HQ deactivates and reactivates a webhook subscription by API: deactivating ends its pending
deliveries visibly (cancelled, with the reason) so nothing waits for a subscription that sends
nothing; reactivating sends only what comes next, unless an operator re-drives; both audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.integrations import events  # noqa: F401  (declares the test event types)
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.integrations.api_webhooks import target_guard
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery
from zhongtai.integrations.targets import TargetGuard

SUBS = "/api/v1/webhooks/subscriptions"
DELIVERIES = "/api/v1/webhooks/deliveries"


@pytest.fixture(autouse=True)
def made_up_dns(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[target_guard] = lambda: TargetGuard(
        resolve=lambda host, port: ["93.184.215.14"]
    )
    yield
    app.dependency_overrides.pop(target_guard, None)


def _subscribe(client: TestClient, headers: dict[str, str]) -> str:
    r = client.post(
        SUBS,
        headers=headers,
        json={"url": "https://erp.example.com/hooks", "event_types": ["test.price_tagged"]},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _delivery(session: Session, subscription_id: str, status: DeliveryStatus, seq: int) -> str:
    delivery = WebhookDelivery(
        subscription_id=uuid.UUID(subscription_id),
        event_id=new_id(),
        event_seq=seq,
        event_type="test.price_tagged",
        aggregate_type="tag",
        aggregate_id="T",
        status=status,
        attempts=8 if status is DeliveryStatus.DEAD else 1,
        next_attempt_at=utcnow(),
        last_error="HTTP 503" if status is not DeliveryStatus.DELIVERED else None,
    )
    session.add(delivery)
    session.commit()
    return str(delivery.id)


def _listed(
    client: TestClient, headers: dict[str, str], subscription_id: str, status: str
) -> list[dict[str, object]]:
    r = client.get(
        DELIVERIES, headers=headers, params={"subscription_id": subscription_id, "status": status}
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _audited(session: Session, subscription_id: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject_id == subscription_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    )


def test_deactivating_cancels_the_pending_deliveries_with_a_reason_and_is_audited(
    client: TestClient, factory: Factory, session: Session
) -> None:
    headers = factory.staff_headers(Role.HQ_ADMIN)
    sub = _subscribe(client, headers)
    waiting = {_delivery(session, sub, DeliveryStatus.PENDING, seq) for seq in (3, 4)}
    dead = _delivery(session, sub, DeliveryStatus.DEAD, 1)
    delivered = _delivery(session, sub, DeliveryStatus.DELIVERED, 2)

    r = client.post(f"{SUBS}/{sub}/deactivate", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert r.json()["cancelled_deliveries"] == 2

    assert _listed(client, headers, sub, "pending") == []
    cancelled = _listed(client, headers, sub, "cancelled")
    assert {d["id"] for d in cancelled} == waiting
    assert {d["cancel_reason"] for d in cancelled} == {"the subscription was deactivated"}
    # What had ended already keeps its ending.
    assert [d["id"] for d in _listed(client, headers, sub, "dead")] == [dead]
    assert [d["id"] for d in _listed(client, headers, sub, "delivered")] == [delivered]

    [entry] = _audited(session, sub)
    assert entry.action == "webhook_subscription.deactivated"
    assert entry.actor is not None and entry.actor.startswith("staff:")
    assert entry.before == {"active": True}
    assert entry.after == {"active": False, "cancelled_deliveries": 2}

    # Again: nothing left to stop, nothing cancelled, nothing more audited.
    again = client.post(f"{SUBS}/{sub}/deactivate", headers=headers)
    assert again.status_code == 200, again.text
    assert (again.json()["active"], again.json()["cancelled_deliveries"]) == (False, 0)
    assert len(_audited(session, sub)) == 1


def test_reactivating_resumes_the_subscription_and_leaves_its_cancelled_deliveries_be(
    client: TestClient, factory: Factory, session: Session
) -> None:
    headers = factory.staff_headers(Role.HQ_ADMIN)
    sub = _subscribe(client, headers)
    waiting = _delivery(session, sub, DeliveryStatus.PENDING, 1)
    client.post(f"{SUBS}/{sub}/deactivate", headers=headers)

    r = client.post(f"{SUBS}/{sub}/reactivate", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True
    assert [d["id"] for d in _listed(client, headers, sub, "cancelled")] == [waiting]
    listed = client.get(SUBS, headers=headers, params={"limit": 500}).json()["items"]
    assert [s["active"] for s in listed if s["id"] == sub] == [True]
    assert [e.action for e in _audited(session, sub)] == [
        "webhook_subscription.deactivated",
        "webhook_subscription.reactivated",
    ]
    assert _audited(session, sub)[-1].after == {"active": True}

    # Reactivating an active subscription changes nothing.
    again = client.post(f"{SUBS}/{sub}/reactivate", headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["active"] is True
    assert len(_audited(session, sub)) == 2


def test_an_unknown_subscription_answers_404_and_a_store_role_403(
    client: TestClient, factory: Factory
) -> None:
    headers = factory.staff_headers(Role.HQ_ADMIN)
    sub = _subscribe(client, headers)
    for action in ("deactivate", "reactivate"):
        missing = client.post(f"{SUBS}/{new_id()}/{action}", headers=headers)
        assert missing.status_code == 404, missing.text
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["type"].endswith("/not-found")
        clerk = client.post(
            f"{SUBS}/{sub}/{action}", headers=factory.staff_headers(Role.STORE_STAFF)
        )
        assert clerk.status_code == 403, clerk.text
        assert clerk.json()["type"].endswith("/forbidden")


def test_an_inactive_subscriptions_deliveries_are_not_redriven_until_it_is_reactivated(
    client: TestClient, factory: Factory, session: Session
) -> None:
    headers = factory.staff_headers(Role.HQ_ADMIN)
    sub = _subscribe(client, headers)
    dead = _delivery(session, sub, DeliveryStatus.DEAD, 1)
    waiting = _delivery(session, sub, DeliveryStatus.PENDING, 2)
    client.post(f"{SUBS}/{sub}/deactivate", headers=headers)

    # Re-driven now, they would wait for a subscription that sends nothing.
    for url in (f"{DELIVERIES}/{dead}/redrive", f"{SUBS}/{sub}/redrive"):
        refused = client.post(url, headers=headers)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/conflict")
        assert "reactivate" in refused.json()["detail"]
    assert [d["id"] for d in _listed(client, headers, sub, "dead")] == [dead]

    client.post(f"{SUBS}/{sub}/reactivate", headers=headers)
    # A cancelled delivery is re-driven like a dead one: from a fresh count, reason cleared.
    one = client.post(f"{DELIVERIES}/{waiting}/redrive", headers=headers)
    assert one.status_code == 200, one.text
    assert (one.json()["status"], one.json()["attempts"], one.json()["cancel_reason"]) == (
        "pending",
        0,
        None,
    )
    # The subscription's re-drive takes the dead ones unless asked for the cancelled ones.
    assert client.post(f"{SUBS}/{sub}/redrive", headers=headers).json() == {"redriven": 1}
    assert _listed(client, headers, sub, "dead") == []


def test_a_subscriptions_cancelled_deliveries_are_redriven_together_on_request(
    client: TestClient, factory: Factory, session: Session
) -> None:
    headers = factory.staff_headers(Role.HQ_ADMIN)
    sub = _subscribe(client, headers)
    for seq in (1, 2, 3):
        _delivery(session, sub, DeliveryStatus.PENDING, seq)
    dead = _delivery(session, sub, DeliveryStatus.DEAD, 4)
    client.post(f"{SUBS}/{sub}/deactivate", headers=headers)
    client.post(f"{SUBS}/{sub}/reactivate", headers=headers)

    r = client.post(f"{SUBS}/{sub}/redrive", headers=headers, params={"status": "cancelled"})
    assert r.status_code == 200, r.text
    assert r.json() == {"redriven": 3}
    assert len(_listed(client, headers, sub, "pending")) == 3
    assert [d["id"] for d in _listed(client, headers, sub, "dead")] == [dead]
    bad = client.post(f"{SUBS}/{sub}/redrive", headers=headers, params={"status": "delivered"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["field"] == "query.status"
