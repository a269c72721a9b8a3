"""Her erasure forgets the stored Idempotency-Key answers that held her data (an identify call,
a profile change, a linked card, a consent): a retry of one answers 410
idempotency-key-forgotten and runs nothing again, never her data."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import new_phone
from zhongtai.core.audit import AuditEntry
from zhongtai.core.auth.roles import Role
from zhongtai.core.idempotency import IdempotencyRecord
from zhongtai.members import api as members_api
from zhongtai.members import service
from zhongtai.members.models import Member

IDENTIFY = "/api/v1/members/identify"
NAME = "钱芳芳"


def _bodies(session: Session, *keys: str) -> dict[str, bytes | None]:
    rows = session.execute(
        select(IdempotencyRecord.key, IdempotencyRecord.body).where(IdempotencyRecord.key.in_(keys))
    )
    return {key: body for key, body in rows}


def _members(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Member)) or 0


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def _her_changes(client: TestClient, clerk: dict[str, str], phone: str) -> tuple[str, list[Any]]:
    """Identify her, then change her profile, link her card and record her consent, each under
    an Idempotency-Key: the requests a till or the app retries."""
    identify = {"kind": "phone", "value": phone, "name": NAME}
    found = client.post(IDENTIFY, json=identify, headers=_keyed(clerk, "identify-1"))
    assert found.status_code == 201, found.text
    url = f"/api/v1/members/{found.json()['member']['id']}"
    calls = [
        ("post", IDENTIFY, identify, "identify-1"),
        ("patch", url, {"name": NAME, "birthday": "1990-05-01", "tags": ["鲜食"]}, "profile-1"),
        ("post", f"{url}/identities", {"kind": "pos_card", "value": "8800991"}, "card-1"),
        ("put", f"{url}/consents/sms", {"granted": True}, "consent-1"),
    ]
    for method, path, body, key in calls[1:]:
        answer = client.request(method, path, json=body, headers=_keyed(clerk, key))
        assert answer.status_code == 200, answer.text
    return found.json()["member"]["id"], calls


def test_erasure_forgets_every_stored_answer_that_held_her_data_and_audits_how_many(
    client: TestClient, factory: Factory, session: Session
) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    hq = factory.staff_headers(Role.HQ_ADMIN)
    phone = new_phone()
    member_id, calls = _her_changes(client, clerk, phone)
    keys = [key for *_, key in calls]
    stored = _bodies(session, *keys)
    assert NAME.encode() in (stored["identify-1"] or b"")  # what there is to forget

    erased = client.post(f"/api/v1/members/{member_id}/erase", headers=hq)

    assert erased.status_code == 200, erased.text
    assert _bodies(session, *keys) == dict.fromkeys(keys)
    masked = f"{phone[:3]}****{phone[-4:]}".encode()
    leftovers = session.scalars(select(IdempotencyRecord.body)).all()
    assert not any(NAME.encode() in (b or b"") or masked in (b or b"") for b in leftovers)
    [entry] = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "member.erased", AuditEntry.subject_id == member_id
        )
    ).all()
    assert entry.after is not None
    assert entry.after["forgotten"]["stored_replays"] == 4


def test_a_retry_after_her_erasure_answers_410_and_runs_nothing_again(
    client: TestClient, factory: Factory, session: Session
) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    hq = factory.staff_headers(Role.HQ_ADMIN)
    phone = new_phone()
    member_id, calls = _her_changes(client, clerk, phone)
    client.post(f"/api/v1/members/{member_id}/erase", headers=hq)
    members_before = _members(session)

    for method, path, body, key in calls:
        again = client.request(method, path, json=body, headers=_keyed(clerk, key))
        assert again.status_code == 410, (key, again.text)
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["type"].endswith("/idempotency-key-forgotten")
        assert NAME not in again.text and phone[-4:] not in again.text
    other_body = client.post(
        IDENTIFY, json={"kind": "phone", "value": new_phone()}, headers=_keyed(clerk, "identify-1")
    )

    assert other_body.status_code == 410  # whatever is sent under it: the key is spent
    assert _members(session) == members_before  # her identify did not register her again
    fresh = client.post(IDENTIFY, json=calls[0][2], headers=_keyed(clerk, "identify-2"))
    assert fresh.status_code == 201 and fresh.json()["member"]["id"] != member_id


def test_the_stored_answers_of_other_members_still_replay_after_her_erasure(
    client: TestClient, factory: Factory
) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    hq = factory.staff_headers(Role.HQ_ADMIN)
    her_id, _ = _her_changes(client, clerk, new_phone())
    other = {"kind": "phone", "value": new_phone(), "name": "孙丽"}
    first = client.post(IDENTIFY, json=other, headers=_keyed(clerk, "someone-else-1"))

    client.post(f"/api/v1/members/{her_id}/erase", headers=hq)
    again = client.post(IDENTIFY, json=other, headers=_keyed(clerk, "someone-else-1"))

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_the_answers_given_under_an_id_merged_into_her_are_forgotten_with_her(
    client: TestClient, factory: Factory, session: Session
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    clerk = factory.staff_headers(Role.STORE_STAFF)
    survivor = client.post(IDENTIFY, json={"kind": "phone", "value": new_phone()}, headers=hq)
    duplicate = client.post(
        IDENTIFY,
        json={"kind": "phone", "value": new_phone(), "name": NAME},
        headers=_keyed(clerk, "duplicate-1"),
    )
    survivor_id = survivor.json()["member"]["id"]
    merged = client.post(
        f"/api/v1/members/{survivor_id}/merge",
        json={"merged_member_id": duplicate.json()["member"]["id"]},
        headers=hq,
    )
    assert merged.status_code == 200, merged.text

    client.post(f"/api/v1/members/{survivor_id}/erase", headers=hq)

    assert _bodies(session, "duplicate-1") == {"duplicate-1": None}


def test_an_answer_stored_as_her_erasure_commits_is_stored_forgotten(
    client: TestClient,
    factory: Factory,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The identify read her before her erasure committed, and stores its answer after: the
    erasure could not see it to forget it, so it is never stored with her data."""
    clerk = factory.staff_headers(Role.STORE_STAFF)
    phone = new_phone()
    known = client.post(
        IDENTIFY, json={"kind": "phone", "value": phone, "name": NAME}, headers=clerk
    )
    member_id = uuid.UUID(known.json()["member"]["id"])
    answer_of = members_api._out

    def answered_then_erased(s: Session, *args: Any, **kwargs: Any) -> Any:
        answer = answer_of(s, *args, **kwargs)
        service.erase_member(s, member_id)  # lands before the answer is stored
        return answer

    monkeypatch.setattr(members_api, "_out", answered_then_erased)
    answer = client.post(
        IDENTIFY, json={"kind": "phone", "value": phone}, headers=_keyed(clerk, "racing-1")
    )

    assert answer.status_code == 200 and answer.json()["member"]["name"] == NAME  # as she was read
    assert _bodies(session, "racing-1") == {"racing-1": None}
