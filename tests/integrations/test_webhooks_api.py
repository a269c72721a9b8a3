"""HQ manages webhook subscriptions by API: the secret is shown once and stored sealed, bad
input and internal targets answer 422 naming their field, dead deliveries are listed and
re-driven."""

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
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.core.settings import Settings
from zhongtai.integrations.api_webhooks import target_guard
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from zhongtai.integrations.settings import event_settings
from zhongtai.integrations.targets import TargetGuard
from zhongtai.integrations.webhooks import webhook_secrets

SUBS = "/api/v1/webhooks/subscriptions"
#: What the made-up host names of these tests resolve to (no DNS server is asked).
NAMES = {
    "erp.example.com": ["93.184.215.14"],
    "wms.example.com": ["93.184.215.15", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "intranet.example.com": ["93.184.215.16", "10.20.30.40"],
    "metadata.example.com": ["169.254.169.254"],
}


def _lookup(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise OSError(-2, "Name or service not known")
    return NAMES[host]


@pytest.fixture(autouse=True)
def made_up_dns(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[target_guard] = lambda: TargetGuard(resolve=_lookup)
    yield
    app.dependency_overrides.pop(target_guard, None)


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


def test_the_secret_is_stored_sealed_and_opens_only_for_its_subscription(
    client: TestClient, factory: Factory, session: Session, settings: Settings
) -> None:
    headers = _hq(factory)
    body = {"url": "https://erp.example.com/sealed", "event_types": ["test.price_tagged"]}
    first = client.post(SUBS, headers=headers, json=body).json()
    second = client.post(SUBS, headers=headers, json=body).json()
    sealed = dict(
        session.execute(
            select(WebhookSubscription.id, WebhookSubscription.secret_sealed).where(
                WebhookSubscription.id.in_([uuid.UUID(first["id"]), uuid.UUID(second["id"])])
            )
        ).all()
    )
    first_id = uuid.UUID(first["id"])
    assert first["secret"].encode() not in sealed[first_id]
    sealer = webhook_secrets(settings)
    assert sealer.open(first_id, sealed[first_id]) == first["secret"]
    # Copied onto another subscription, a sealed secret does not open.
    with pytest.raises(ValueError, match="does not open"):
        sealer.open(uuid.UUID(second["id"]), sealed[first_id])


def test_a_callers_secret_is_kept_and_a_replay_does_not_repeat_it(
    client: TestClient, factory: Factory
) -> None:
    headers = {**_hq(factory), "Idempotency-Key": "sub-replay-1"}
    body = {
        "url": "https://erp.example.com/hook",
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
        ({"url": "https://erp.example.com/x", "event_types": ["no.such_event"]}, "event_types"),
        ({"url": "https://erp.example.com/x", "event_types": []}, "event_types"),
        (
            {
                "url": "https://erp.example.com/x",
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


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]:8080/hook", "::1 is a loopback address"),
        ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
        ("http://192.168.1.10/hook", "192.168.1.10 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/hook", "240.0.0.1 is a private address"),
        (
            "https://intranet.example.com/hook",
            "intranet.example.com resolves to 10.20.30.40 is a private address",
        ),
        (
            "https://metadata.example.com/hook",
            "metadata.example.com resolves to 169.254.169.254 is a link-local address",
        ),
        ("https://nowhere.example.com/hook", "nowhere.example.com does not resolve"),
        ("gopher://erp.example.com/hook", "must be an absolute http:// or https:// URL"),
    ],
)
def test_an_internal_or_unreachable_target_answers_422_naming_the_url(
    client: TestClient, factory: Factory, url: str, reason: str
) -> None:
    r = client.post(
        SUBS, headers=_hq(factory), json={"url": url, "event_types": ["test.price_tagged"]}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    [error] = r.json()["errors"]
    assert error["field"] == "url"
    assert reason in error["message"]


def test_a_host_on_public_addresses_only_is_subscribed(
    client: TestClient, factory: Factory
) -> None:
    r = client.post(
        SUBS,
        headers=_hq(factory),
        json={"url": "https://wms.example.com/hook", "event_types": ["test.price_tagged"]},
    )
    assert r.status_code == 201, r.text


def test_internal_targets_are_refused_by_default_and_taken_once_allowed(
    client: TestClient, app: FastAPI, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.dependency_overrides.pop(target_guard)  # the real settings decide
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["test.price_tagged"]}
    monkeypatch.delenv("ZHONGTAI_WEBHOOK_ALLOW_PRIVATE_TARGETS", raising=False)
    event_settings.cache_clear()
    try:
        refused = client.post(SUBS, headers=_hq(factory), json=body)
        assert refused.status_code == 422, refused.text
        monkeypatch.setenv("ZHONGTAI_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        event_settings.cache_clear()
        taken = client.post(SUBS, headers=_hq(factory), json=body)
        assert taken.status_code == 201, taken.text
    finally:
        monkeypatch.undo()
        event_settings.cache_clear()


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
        json={"url": "https://erp.example.com/h", "event_types": ["test.price_tagged"]},
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
        json={"url": "https://erp.example.com/h", "event_types": ["test.price_tagged"]},
    ).json()
    _dead_delivery(session, sub["id"])
    r = client.post(f"{SUBS}/{sub['id']}/redrive", headers=headers)
    assert r.json() == {"redriven": 1}
    off = client.post(f"{SUBS}/{sub['id']}/deactivate", headers=headers)
    assert off.json()["active"] is False
