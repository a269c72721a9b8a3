"""HQ manages webhook subscriptions by API: the secret is shown once, bad input names its field,
dead deliveries are listed and re-driven."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.integrations import events  # noqa: F401  (declares the test event types)
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery

SUBS = "/api/v1/webhooks/subscriptions"


def _hq(factory: Factory) -> dict[str, str]:
    return factory.staff_headers(Role.HQ_ADMIN)


def test_a_subscription_shows_its_generated_secret_once(
    client: TestClient, factory: Factory
) -> None:
    headers = _hq(factory)
    store = factory.location()
    r = client.post(
        SUBS,
        headers=headers,
        json={
            "url": "https://erp.example.com/hooks/zhongtai",
            "event_types": ["test.price_tagged", "test.shelf_counted"],
            "store_ids": [str(store.id)],
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["store_ids"] == [str(store.id)]
    listed = client.get(SUBS, headers=headers).json()["items"]
    [mine] = [s for s in listed if s["id"] == created["id"]]
    assert "secret" not in mine


def test_a_callers_secret_is_kept_and_a_replay_does_not_repeat_it(
    client: TestClient, factory: Factory
) -> None:
    headers = {**_hq(factory), "Idempotency-Key": "sub-replay-1"}
    body = {
        "url": "http://127.0.0.1:9/hook",
        "event_types": ["test.price_tagged"],
        "secret": "my-own-secret-of-length",
    }
    first = client.post(SUBS, headers=headers, json=body)
    again = client.post(SUBS, headers=headers, json=body)
    assert first.json()["secret"] == "my-own-secret-of-length"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["secret"] is None
    assert again.json()["id"] == first.json()["id"]


def test_bad_subscriptions_answer_422_naming_the_field(
    client: TestClient, factory: Factory
) -> None:
    headers = _hq(factory)
    cases = [
        ({"url": "ftp://example.com/x", "event_types": ["test.price_tagged"]}, "url"),
        ({"url": "https://example.com/x", "event_types": ["no.such_event"]}, "event_types"),
        ({"url": "https://example.com/x", "event_types": []}, "event_types"),
        (
            {
                "url": "https://example.com/x",
                "event_types": ["test.price_tagged"],
                "secret": "short",
            },
            "secret",
        ),
    ]
    for body, field in cases:
        r = client.post(SUBS, headers=headers, json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert any(field in str(e.get("field", e.get("loc", ""))) for e in r.json()["errors"]), (
            r.text
        )
    assert all(
        s["url"] != "ftp://example.com/x" for s in client.get(SUBS, headers=headers).json()["items"]
    )


def _dead_delivery(session: Session, subscription_id: str) -> WebhookDelivery:
    delivery = WebhookDelivery(
        subscription_id=uuid.UUID(subscription_id),
        event_id=new_id(),
        event_seq=1,
        event_type="test.price_tagged",
        aggregate_type="tag",
        aggregate_id="T",
        status=DeliveryStatus.DEAD,
        attempts=8,
        next_attempt_at=utcnow(),
        last_status_code=503,
        last_error="HTTP 503",
    )
    session.add(delivery)
    session.commit()
    return delivery


def test_dead_deliveries_are_listed_and_redriven_once(
    client: TestClient, factory: Factory, session: Session
) -> None:
    headers = _hq(factory)
    sub = client.post(
        SUBS,
        headers=headers,
        json={"url": "http://127.0.0.1:9/h", "event_types": ["test.price_tagged"]},
    ).json()
    delivery = _dead_delivery(session, sub["id"])
    dead = client.get(
        "/api/v1/webhooks/deliveries",
        headers=headers,
        params={"status": "dead", "subscription_id": sub["id"]},
    ).json()["items"]
    assert [d["id"] for d in dead] == [str(delivery.id)]
    assert dead[0]["last_error"] == "HTTP 503"
    r = client.post(f"/api/v1/webhooks/deliveries/{delivery.id}/redrive", headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    again = client.post(f"/api/v1/webhooks/deliveries/{delivery.id}/redrive", headers=headers)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/conflict")
    missing = client.post(f"/api/v1/webhooks/deliveries/{new_id()}/redrive", headers=headers)
    assert missing.status_code == 404


def test_a_subscriptions_dead_letters_are_redriven_together(
    client: TestClient, factory: Factory, session: Session
) -> None:
    headers = _hq(factory)
    sub = client.post(
        SUBS,
        headers=headers,
        json={"url": "http://127.0.0.1:9/h", "event_types": ["test.price_tagged"]},
    ).json()
    _dead_delivery(session, sub["id"])
    r = client.post(f"{SUBS}/{sub['id']}/redrive", headers=headers)
    assert r.json() == {"redriven": 1}
    off = client.post(f"{SUBS}/{sub['id']}/deactivate", headers=headers)
    assert off.json()["active"] is False
