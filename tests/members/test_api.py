"""Members over HTTP: every touchpoint finds the same member; PII shown by role."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import new_phone
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.idempotency import IdempotencyRecord

IDENTIFY = "/api/v1/members/identify"


def test_the_pos_registers_a_member_and_the_app_finds_her_by_the_same_phone(
    client: TestClient, factory: Factory
) -> None:
    store = factory.location()
    pos = factory.api_key_headers(Channel.POS, store=store)
    app = factory.api_key_headers(Channel.APP)
    phone = new_phone()
    first = client.post(
        IDENTIFY,
        json={"kind": "phone", "value": phone, "store_id": str(store.id), "name": "刘洋"},
        headers=pos,
    )
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    member = first.json()["member"]
    assert member["registered_via"] == "pos" and member["registered_store_id"] == str(store.id)
    again = client.post(IDENTIFY, json={"kind": "phone", "value": f"+86 {phone}"}, headers=app)
    assert again.status_code == 200
    assert again.json() == {"created": False, "member": member}


def test_a_guide_sees_the_phone_masked_and_hq_sees_it_whole(
    client: TestClient, factory: Factory
) -> None:
    guide = factory.staff_headers(Role.GUIDE)
    hq = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(IDENTIFY, json={"kind": "phone", "value": "13812341234"}, headers=guide)
    member_id = r.json()["member"]["id"]
    assert r.json()["member"]["identities"] == [
        {"kind": "phone", "value": "138****1234", "masked": True}
    ]
    whole = client.get(f"/api/v1/members/{member_id}", headers=hq).json()
    assert whole["identities"] == [{"kind": "phone", "value": "13812341234", "masked": False}]


def test_looking_up_without_creating_an_unknown_identity_is_404_and_creates_nobody(
    client: TestClient, factory: Factory
) -> None:
    app = factory.api_key_headers(Channel.APP)
    body = {"kind": "app_user_id", "value": "U-404", "create": False}
    assert client.post(IDENTIFY, json=body, headers=app).status_code == 404
    assert client.post(IDENTIFY, json=body, headers=app).status_code == 404


def test_a_malformed_phone_is_a_422_naming_value(client: TestClient, factory: Factory) -> None:
    pos = factory.api_key_headers(Channel.POS)
    r = client.post(IDENTIFY, json={"kind": "phone", "value": "12-34"}, headers=pos)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["value"]


def test_an_unknown_identity_kind_is_a_422_naming_kind(
    client: TestClient, factory: Factory
) -> None:
    pos = factory.api_key_headers(Channel.POS)
    r = client.post(IDENTIFY, json={"kind": "email", "value": "a@b.c"}, headers=pos)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["kind"]


def test_profile_consent_and_linking_over_http(client: TestClient, factory: Factory) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    member = client.post(IDENTIFY, json={"kind": "phone", "value": new_phone()}, headers=clerk)
    url = f"/api/v1/members/{member.json()['member']['id']}"
    patched = client.patch(
        url,
        json={"birthday": "1995-10-01", "preferences": {"top_size": "S"}, "tags": ["apparel"]},
        headers=clerk,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["preferences"] == {"top_size": "S"}
    consent = client.put(f"{url}/consents/sms", json={"granted": True}, headers=clerk)
    assert consent.status_code == 200
    assert (consent.json()["granted"], consent.json()["source"]) == (True, "store_staff")
    linked = client.post(
        f"{url}/identities", json={"kind": "pos_card", "value": "8800123"}, headers=clerk
    )
    assert [i["kind"] for i in linked.json()["identities"]] == ["phone", "pos_card"]
    assert linked.json()["identities"][1]["value"] == "8******"


def test_hq_merges_exports_and_erases(client: TestClient, factory: Factory) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    phone_a, phone_b = new_phone(), new_phone()
    a = client.post(IDENTIFY, json={"kind": "phone", "value": phone_a}, headers=hq).json()
    b = client.post(IDENTIFY, json={"kind": "phone", "value": phone_b}, headers=hq).json()
    a_id, b_id = a["member"]["id"], b["member"]["id"]
    merged = client.post(
        f"/api/v1/members/{a_id}/merge", json={"merged_member_id": b_id}, headers=hq
    )
    assert merged.status_code == 200, merged.text
    assert client.get(f"/api/v1/members/{b_id}", headers=hq).json()["id"] == a_id
    export = client.get(f"/api/v1/members/{a_id}/export", headers=hq).json()
    assert sorted(i["value"] for i in export["identities"]) == sorted([phone_a, phone_b])
    erased = client.post(f"/api/v1/members/{a_id}/erase", headers=hq)
    assert erased.status_code == 200
    assert (erased.json()["status"], erased.json()["identities"]) == ("erased", [])


def test_changes_answer_masked_even_to_hq_so_no_phone_lands_in_stored_replays(
    client: TestClient, factory: Factory, session: Session
) -> None:
    hq = factory.staff_headers(Role.HQ_ADMIN)
    phone = new_phone()
    r = client.post(
        IDENTIFY,
        json={"kind": "phone", "value": phone},
        headers={**hq, "Idempotency-Key": "hq-identify-1"},
    )
    assert r.json()["member"]["identities"][0]["masked"] is True
    bodies = session.scalars(select(IdempotencyRecord.body)).all()
    assert bodies and not any(phone.encode() in (b or b"") for b in bodies)
