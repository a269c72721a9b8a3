"""HQ rotates the signing secret of a webhook subscription or a marketplace connection by API:
the new secret is shown once and stored sealed, the old one keeps signing for the overlap asked,
a replay rotates nothing, the change is audited, and a secret that no longer opens (a changed
ZHONGTAI_SECRET_KEY) is replaced all the same."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.integrations import events  # noqa: F401  (declares the test event types)
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.ids import new_id
from zhongtai.core.settings import Settings
from zhongtai.integrations.api_marketplace import connection_guard
from zhongtai.integrations.api_webhooks import target_guard
from zhongtai.integrations.marketplace import marketplace_secrets
from zhongtai.integrations.marketplace_models import MarketplaceConnection
from zhongtai.integrations.models import WebhookSubscription
from zhongtai.integrations.sealed_secrets import SecretSealer
from zhongtai.integrations.targets import TargetGuard
from zhongtai.integrations.webhooks import webhook_secrets

DAY = 24 * 3600
OTHER_KEY = Settings(secret_key="a-key-the-app-does-not-run-with-0123456789")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Kind:
    """A kind of thing with a signing secret, as the API and the database show it."""

    collection: str
    body: dict[str, Any]
    model: type[WebhookSubscription] | type[MarketplaceConnection]
    sealer_of: Callable[[Settings], SecretSealer]
    prefix: str
    subject: str

    def create(self, client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
        r = client.post(self.collection, headers=headers, json=self.body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def rotate_url(self, owner_id: str | uuid.UUID) -> str:
        return f"{self.collection}/{owner_id}/rotate-secret"

    def sealed(self, session: Session, owner_id: str) -> tuple[bytes, bytes | None]:
        session.expire_all()
        row = session.get(self.model, uuid.UUID(owner_id))
        assert row is not None
        return row.secret_sealed, row.previous_secret_sealed


WEBHOOK = Kind(
    collection="/api/v1/webhooks/subscriptions",
    body={"url": "https://erp.example.com/hooks", "event_types": ["test.price_tagged"]},
    model=WebhookSubscription,
    sealer_of=webhook_secrets,
    prefix="whsec_",
    subject="webhook_subscription",
)
MARKETPLACE = Kind(
    collection="/api/v1/marketplace/connections",
    body={"name": "meituan", "endpoint_url": "https://mt.example.com/stock"},
    model=MarketplaceConnection,
    sealer_of=marketplace_secrets,
    prefix="mksec_",
    subject="marketplace_connection",
)


@pytest.fixture(params=[WEBHOOK, MARKETPLACE], ids=["webhook", "marketplace"])
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def public_names(app: FastAPI) -> Iterator[None]:
    """The made-up hosts of these tests resolve to a public address (no DNS is asked)."""
    guard = TargetGuard(resolve=lambda host, port: ["93.184.215.14"])
    app.dependency_overrides[target_guard] = lambda: guard
    app.dependency_overrides[connection_guard] = lambda: guard
    yield
    app.dependency_overrides.pop(target_guard, None)
    app.dependency_overrides.pop(connection_guard, None)


def _hq(factory: Factory) -> dict[str, str]:
    return factory.staff_headers(Role.HQ_ADMIN)


def _close_to(value: str, expected: datetime) -> bool:
    return abs(datetime.fromisoformat(value) - expected) < timedelta(minutes=1)


def test_a_rotation_shows_a_new_secret_once_and_keeps_the_old_one_for_a_day(
    client: TestClient, factory: Factory, session: Session, settings: Settings, kind: Kind
) -> None:
    headers = _hq(factory)
    created = kind.create(client, headers)
    r = client.post(kind.rotate_url(created["id"]), headers=headers)
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["id"] == created["id"]
    assert rotated["secret"].startswith(kind.prefix) and len(rotated["secret"]) > 30
    assert rotated["secret"] != created["secret"]
    assert _close_to(rotated["previous_secret_expires_at"], utcnow() + timedelta(days=1))

    sealer = kind.sealer_of(settings)
    current, previous = kind.sealed(session, created["id"])
    assert rotated["secret"].encode() not in current
    assert sealer.open(uuid.UUID(created["id"]), current) == rotated["secret"]
    assert previous is not None
    assert sealer.open(uuid.UUID(created["id"]), previous) == created["secret"]

    # Never again: not when listed, not when read.
    listed = client.get(kind.collection, headers=headers).json()["items"]
    [mine] = [item for item in listed if item["id"] == created["id"]]
    assert "secret" not in mine
    assert mine["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    assert rotated["secret"] not in json.dumps(listed)


def test_neither_secret_reaches_the_logs(
    client: TestClient, factory: Factory, kind: Kind, caplog: pytest.LogCaptureFixture
) -> None:
    headers = _hq(factory)
    created = kind.create(client, headers)
    with caplog.at_level(logging.DEBUG):
        rotated = client.post(kind.rotate_url(created["id"]), headers=headers).json()
    assert any(record.levelno >= logging.INFO for record in caplog.records), "logs were taken"
    assert rotated["secret"] not in caplog.text
    assert created["secret"] not in caplog.text


def test_an_overlap_of_zero_switches_at_once(
    client: TestClient, factory: Factory, session: Session, kind: Kind
) -> None:
    headers = _hq(factory)
    created = kind.create(client, headers)
    r = client.post(kind.rotate_url(created["id"]), headers=headers, json={"overlap_seconds": 0})
    assert r.status_code == 200, r.text
    assert r.json()["previous_secret_expires_at"] is None
    assert kind.sealed(session, created["id"])[1] is None


def test_a_replayed_rotation_answers_the_first_without_the_secret_and_rotates_once(
    client: TestClient, factory: Factory, session: Session, settings: Settings, kind: Kind
) -> None:
    headers = _hq(factory)
    created = kind.create(client, headers)
    retry = {**headers, "Idempotency-Key": f"rotate-{created['id']}"}
    body = {"overlap_seconds": 3600}
    first = client.post(kind.rotate_url(created["id"]), headers=retry, json=body)
    again = client.post(kind.rotate_url(created["id"]), headers=retry, json=body)
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "secret": None}

    # The secret of the first answer is the one that signs; the original is the previous one.
    sealer = kind.sealer_of(settings)
    current, previous = kind.sealed(session, created["id"])
    assert sealer.open(uuid.UUID(created["id"]), current) == first.json()["secret"]
    assert previous is not None
    assert sealer.open(uuid.UUID(created["id"]), previous) == created["secret"]
    audited = session.scalars(
        select(AuditEntry).where(AuditEntry.subject_id == created["id"])
    ).all()
    assert [entry.action for entry in audited] == [f"{kind.subject}.secret_rotated"]


def test_a_rotation_is_audited_with_who_and_the_overlap_never_the_secret(
    client: TestClient, factory: Factory, session: Session, kind: Kind
) -> None:
    headers = _hq(factory)
    created = kind.create(client, headers)
    rotated = client.post(
        kind.rotate_url(created["id"]), headers=headers, json={"overlap_seconds": 600}
    ).json()
    [entry] = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == f"{kind.subject}.secret_rotated",
            AuditEntry.subject_id == created["id"],
        )
    ).all()
    assert entry.subject_type == kind.subject
    assert entry.actor is not None and entry.actor.startswith("staff:")
    assert entry.after is not None
    assert entry.after["overlap_seconds"] == 600
    assert entry.after["previous_secret_opened"] is True
    assert _close_to(entry.after["previous_secret_expires_at"], utcnow() + timedelta(minutes=10))
    logged = json.dumps([entry.before, entry.after])
    assert rotated["secret"] not in logged and created["secret"] not in logged


def test_a_secret_that_no_longer_opens_is_replaced_with_no_overlap(
    client: TestClient, factory: Factory, session: Session, settings: Settings, kind: Kind
) -> None:
    headers = _hq(factory)
    created = kind.create(client, headers)
    owner_id = uuid.UUID(created["id"])
    # As if ZHONGTAI_SECRET_KEY had changed since the secret was sealed.
    session.execute(
        update(kind.model)
        .where(kind.model.id == owner_id)
        .values(secret_sealed=kind.sealer_of(OTHER_KEY).seal(owner_id, created["secret"]))
    )
    session.commit()

    r = client.post(kind.rotate_url(owner_id), headers=headers, json={"overlap_seconds": DAY})
    assert r.status_code == 200, r.text
    assert r.json()["previous_secret_expires_at"] is None, "a secret nobody can open signs nothing"
    current, previous = kind.sealed(session, created["id"])
    assert kind.sealer_of(settings).open(owner_id, current) == r.json()["secret"]
    assert previous is None
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.subject_id == created["id"]))
    assert entry.after is not None and entry.after["previous_secret_opened"] is False


@pytest.mark.parametrize(
    "overlap", [-1, 7 * DAY + 1, "a day", None], ids=["negative", "over 7 days", "text", "null"]
)
def test_a_bad_overlap_answers_422_naming_the_field_and_rotates_nothing(
    client: TestClient, factory: Factory, session: Session, kind: Kind, overlap: object
) -> None:
    headers = _hq(factory)
    created = kind.create(client, headers)
    before = kind.sealed(session, created["id"])
    r = client.post(
        kind.rotate_url(created["id"]), headers=headers, json={"overlap_seconds": overlap}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["overlap_seconds"], r.text
    assert kind.sealed(session, created["id"]) == before


def test_the_longest_overlap_is_seven_days(
    client: TestClient, factory: Factory, kind: Kind
) -> None:
    headers = _hq(factory)
    created = kind.create(client, headers)
    r = client.post(
        kind.rotate_url(created["id"]), headers=headers, json={"overlap_seconds": 7 * DAY}
    )
    assert r.status_code == 200, r.text
    assert _close_to(r.json()["previous_secret_expires_at"], utcnow() + timedelta(days=7))


def test_an_unknown_id_answers_404(client: TestClient, factory: Factory, kind: Kind) -> None:
    r = client.post(kind.rotate_url(new_id()), headers=_hq(factory))
    assert r.status_code == 404, r.text
    assert r.json()["type"].endswith("/not-found")


@pytest.mark.parametrize("role", [Role.STORE_MANAGER, Role.STORE_STAFF, Role.ANALYST])
def test_only_those_who_may_create_one_may_rotate_its_secret(
    client: TestClient, factory: Factory, session: Session, kind: Kind, role: Role
) -> None:
    created = kind.create(client, _hq(factory))
    before = kind.sealed(session, created["id"])
    r = client.post(kind.rotate_url(created["id"]), headers=factory.staff_headers(role))
    assert r.status_code == 403, r.text
    assert kind.sealed(session, created["id"]) == before
