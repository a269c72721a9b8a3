"""WeCom contact events bind customers to guides: callbacks sealed by the published algorithm
with the test's own keys, opened by our implementation; forged and replayed ones are refused."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide
from tests.orders.conftest import Chain
from zhongtai.core.clock import utcnow
from zhongtai.guides import binding
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.models import GuideBinding, WeComContact
from zhongtai.integrations.wecom.crypto import WeComCrypto
from zhongtai.integrations.wecom.settings import WeComSettings
from zhongtai.members import service as members
from zhongtai.members.models import ConsentChannel, IdentityKind
from zhongtai.members.pii import PiiCipher

CORP = "ww5e7f0c3a9d12b4e6"
TOKEN = "QDG6eK"
AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")  # 43 characters


class Directory:
    """WeCom's contact directory as the test knows it: external user id → unionid."""

    def __init__(self, unionids: dict[str, str]) -> None:
        self.unionids = unionids
        self.asked: list[str] = []

    def unionid_of(self, external_userid: str) -> str | None:
        self.asked.append(external_userid)
        return self.unionids.get(external_userid)


@pytest.fixture
def wecom(app: FastAPI) -> Directory:
    app.state.wecom = WeComSettings(
        corp_id=CORP, token=SecretStr(TOKEN), encoding_aes_key=SecretStr(AES_KEY)
    )
    app.state.wecom_directory = directory = Directory({"wmEXT1": "union-1"})
    return directory


SEAL = WeComCrypto(TOKEN, AES_KEY, CORP)


def event(change: str, user: str = "lihua", external: str = "wmEXT1", extra: str = "") -> str:
    sent = int(utcnow().timestamp())
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{sent}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType>"
        f"<UserID><![CDATA[{user}]]></UserID>"
        f"<ExternalUserID><![CDATA[{external}]]></ExternalUserID>{extra}</xml>"
    )


def post(client: TestClient, xml: str, *, nonce: str | None = None, at: int | None = None):  # type: ignore[no-untyped-def]
    sealed = SEAL.sealed_callback(
        xml, nonce or os.urandom(6).hex(), at if at is not None else int(utcnow().timestamp())
    )
    return client.post("/api/v1/wecom/callback", params=sealed.query, content=sealed.body), sealed


@pytest.fixture
def member_on_wechat(session: Session, cipher: PiiCipher):  # type: ignore[no-untyped-def]
    member, _ = members.find_or_create_member(
        session, cipher, IdentityKind.WECHAT_UNIONID, "union-1", via="mini_program"
    )
    session.commit()
    return member


def test_url_verification_answers_the_decrypted_echo(client: TestClient, wecom: Directory) -> None:
    echo = SEAL.encrypt("1616140317555161061")
    stamp, nonce = str(int(utcnow().timestamp())), "n0nce"
    answer = client.get(
        "/api/v1/wecom/callback",
        params={
            "msg_signature": WeComCrypto.signature(TOKEN, stamp, nonce, echo),
            "timestamp": stamp,
            "nonce": nonce,
            "echostr": echo,
        },
    )
    assert answer.status_code == 200 and answer.text == "1616140317555161061"


def test_a_customer_adding_her_guide_on_wecom_binds_her_by_unionid_once(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    wecom: Directory,
    member_on_wechat,  # type: ignore[no-untyped-def]
    session: Session,
) -> None:
    guide = enroll_guide(chain.store, wecom="lihua")
    answer, sealed = post(client, event("add_external_contact", extra="<State>qr-1</State>"))
    assert (answer.status_code, answer.text) == (200, "success")
    current = binding.current_binding(session, member_on_wechat.id)
    assert current is not None
    assert (current.guide_id, current.source, current.source_ref) == (
        guide.id,
        BindingSource.WECOM,
        "wmEXT1",
    )
    # WeCom sends the same callback again (it did not see our answer): nothing changes twice.
    again = client.post("/api/v1/wecom/callback", params=sealed.query, content=sealed.body)
    assert (again.status_code, again.text) == (200, "success")
    rows = session.scalars(
        select(GuideBinding).where(GuideBinding.member_id == member_on_wechat.id)
    ).all()
    assert len(rows) == 1
    assert wecom.asked == ["wmEXT1"]


def test_the_customer_removing_her_guide_ends_the_binding_but_a_transfer_does_not(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    wecom: Directory,
    member_on_wechat,  # type: ignore[no-untyped-def]
    session: Session,
) -> None:
    enroll_guide(chain.store, wecom="lihua")
    post(client, event("add_external_contact"))
    moved, _ = post(
        client, event("del_external_contact", extra="<Source>DELETE_BY_TRANSFER</Source>")
    )
    assert moved.status_code == 200
    assert binding.current_binding(session, member_on_wechat.id) is not None
    post(client, event("add_external_contact"))
    left, _ = post(client, event("del_follow_user"))
    assert left.status_code == 200
    assert binding.current_binding(session, member_on_wechat.id) is None
    ended = session.scalars(
        select(GuideBinding).where(GuideBinding.member_id == member_on_wechat.id)
    ).one()
    assert ended.end_reason == "wecom_customer_left"
    contact = session.scalars(select(WeComContact)).one()
    assert contact.removed_by == "del_follow_user"


def test_a_contact_whose_unionid_is_unknown_is_recorded_without_binding_anyone(
    client: TestClient, chain: Chain, enroll_guide: EnrollGuide, wecom: Directory, session: Session
) -> None:
    enroll_guide(chain.store, wecom="lihua")
    answer, _ = post(client, event("add_external_contact", external="wmSTRANGER"))
    assert answer.status_code == 200
    contact = session.scalars(select(WeComContact)).one()
    assert contact.member_id is None
    assert session.scalars(select(GuideBinding)).all() == []


@pytest.mark.parametrize("tamper", ["signature", "ciphertext", "stale", "other_corp"])
def test_forged_or_replayed_callbacks_are_refused_and_change_nothing(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    wecom: Directory,
    member_on_wechat,  # type: ignore[no-untyped-def]
    session: Session,
    tamper: str,
) -> None:
    enroll_guide(chain.store, wecom="lihua")
    xml = event("add_external_contact")
    stamp = int(utcnow().timestamp())
    if tamper == "stale":
        stamp = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    sealer = WeComCrypto(TOKEN, AES_KEY, "wwSOMEONEELSE") if tamper == "other_corp" else SEAL
    sealed = sealer.sealed_callback(xml, "abc123", stamp)
    query, body = sealed.query, sealed.body
    if tamper == "signature":
        query = {**query, "msg_signature": "0" * 40}
    if tamper == "ciphertext":
        body = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA")
    answer = client.post("/api/v1/wecom/callback", params=query, content=body)
    assert answer.status_code in {400, 403}
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"].startswith("wecom-")
    assert binding.current_binding(session, member_on_wechat.id) is None


def test_callbacks_answer_404_when_wecom_is_not_configured(client: TestClient) -> None:
    sealed = SEAL.sealed_callback(event("add_external_contact"), "n", int(utcnow().timestamp()))
    answer = client.post("/api/v1/wecom/callback", params=sealed.query, content=sealed.body)
    assert answer.status_code == 404


def _contacts(session: Session) -> list[tuple[str, object, object]]:
    rows = session.scalars(select(WeComContact))
    return sorted((c.external_userid, c.guide_id, c.member_id) for c in rows)


def test_a_merge_moves_the_merged_members_wecom_contacts_to_the_survivor_once(
    client: TestClient,
    chain: Chain,
    enroll_guide: EnrollGuide,
    wecom: Directory,
    member_on_wechat,  # type: ignore[no-untyped-def]
    cipher: PiiCipher,
    session: Session,
) -> None:
    lihua, wangfang = enroll_guide(chain.store, wecom="lihua"), enroll_guide(chain.store)
    wangfang.guide.wecom_userid = "wangfang"
    # The survivor is on lihua's WeCom with another WeChat account of hers.
    survivor, _ = members.find_or_create_member(
        session, cipher, IdentityKind.WECHAT_UNIONID, "union-2", via="app"
    )
    members.set_consent(session, survivor.id, ConsentChannel.WECOM, granted=True, source="app")
    session.commit()
    wecom.unionids["wmEXT2"] = "union-2"
    for user, external in [("lihua", "wmEXT1"), ("wangfang", "wmEXT1"), ("lihua", "wmEXT2")]:
        answer, _ = post(client, event("add_external_contact", user=user, external=external))
        assert answer.status_code == 200
    duplicate = member_on_wechat.id
    hers_before = session.scalars(
        select(WeComContact.id).where(WeComContact.member_id == duplicate)
    ).all()
    assert len(hers_before) == 2

    merge = members.merge_members(session, survivor.id, duplicate)
    session.commit()

    # Every contact is the survivor's now, each once: none copied, none left on the merged id.
    assert _contacts(session) == sorted(
        [
            ("wmEXT1", lihua.id, survivor.id),
            ("wmEXT1", wangfang.id, survivor.id),
            ("wmEXT2", lihua.id, survivor.id),
        ]
    )
    assert sorted(merge.moved["wecom_contacts"]["moved"]) == sorted(map(str, hers_before))
    assert members.merge_members(session, survivor.id, duplicate).id == merge.id
    assert len(_contacts(session)) == 3
    # Her guide's phone offers WeCom for her (she is in the guide's contacts), on one card.
    page = client.get("/api/v1/guides/me/customers", headers=lihua.headers).json()
    assert [(c["member_id"], c["contact_options"]) for c in page["items"]] == [
        (str(survivor.id), ["wecom"])
    ]
