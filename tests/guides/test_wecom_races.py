"""On PostgreSQL: WeCom sending the same callback many times at once gets ``success`` for every
copy, and the change is applied once; a member merge racing her WeCom contact events moves her
contacts to the survivor without either side being chosen as a deadlock victim."""

from __future__ import annotations

import base64
import os
import threading
import uuid
from collections.abc import Iterator
from typing import ClassVar
from unittest.mock import patch

import pytest
from pydantic import SecretStr
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.factories import TEST_SECRET, Factory, password_hash
from tests.live_server import LiveServer
from tests.races import MANY_CONNECTIONS, all_at_once, race_server, requests_at_once
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.core.settings import Settings
from zhongtai.guides import binding, roster, wecom_contacts
from zhongtai.guides.models import GuideBinding, WeComCallbackReceipt, WeComContact
from zhongtai.integrations.wecom.crypto import WeComCrypto
from zhongtai.integrations.wecom.messages import ExternalContactChange, ExternalContactChanged
from zhongtai.integrations.wecom.settings import WeComSettings
from zhongtai.members import service as members
from zhongtai.members.models import IdentityKind
from zhongtai.members.pii import cipher_for

pytestmark = MANY_CONNECTIONS
CLIENTS = 24
PAIRS = 8
CORP = "ww5e7f0c3a9d12b4e6"
TOKEN = "QDG6eK"
AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")
SEAL = WeComCrypto(TOKEN, AES_KEY, CORP)
#: Identities other than phones are kept as given: any key finds a unionid.
CIPHER = cipher_for(Settings(secret_key=SecretStr(TEST_SECRET)))
_seq = iter(range(1, 1_000_000))


class Directory:
    """WeCom's contact directory as the test knows it (``wm-<n>`` is ``union-<n>``), counting
    the questions: one per contact added, however many copies of the callback arrive."""

    asked: ClassVar[list[str]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, corp_id: str, secret: str, *, base_url: str) -> None:
        pass

    def unionid_of(self, external_userid: str) -> str | None:
        with self.lock:
            self.asked.append(external_userid)
        return external_userid.replace("wm-", "union-")

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    wecom = WeComSettings(
        corp_id=CORP,
        token=SecretStr(TOKEN),
        encoding_aes_key=SecretStr(AES_KEY),
        secret=SecretStr("directory-secret"),
    )
    with (
        patch("zhongtai.app.wecom_settings", return_value=wecom),
        patch("zhongtai.app.WeComDirectory", Directory),
        race_server("zt_wecom_races") as srv,
    ):
        yield srv


def _guide_and_member(db: Database) -> tuple[str, uuid.UUID, str]:
    """A guide on WeCom (her WeCom user id) and a member on WeChat (her id, her external id)."""
    n = next(_seq)
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        staff = auth.create_staff_user(
            s,
            username=f"wecom-race-guide-{n}",
            display_name="guide",
            role=Role.GUIDE,
            password="race-password-123",
            password_hash=password_hash("race-password-123"),
            store_ids=[store.id],
        )
        roster.enroll_guide(s, staff.id, wecom_userid=f"wx-race-{n}")
        member, _ = members.find_or_create_member(
            s, CIPHER, IdentityKind.WECHAT_UNIONID, f"union-{n}", via="app"
        )
        return f"wx-race-{n}", member.id, f"wm-{n}"


def _added(user: str, external: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{int(utcnow().timestamp())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        f"<UserID><![CDATA[{user}]]></UserID>"
        f"<ExternalUserID><![CDATA[{external}]]></ExternalUserID></xml>"
    )


def _count(s: Session, model: type, *where: ColumnElement[bool]) -> int:
    return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_copies_of_one_callback_arriving_at_once_all_succeed_and_bind_her_once(
    server: LiveServer,
) -> None:
    user, member_id, external = _guide_and_member(server.db)
    sealed = SEAL.sealed_callback(_added(user, external), "dup-nonce", int(utcnow().timestamp()))
    key = WeComCrypto.replay_key(sealed.timestamp, sealed.nonce, sealed.msg_signature)
    url = f"{server.url}/api/v1/wecom/callback"

    answers = requests_at_once(
        [lambda c: c.post(url, params=sealed.query, content=sealed.body)] * CLIENTS
    )

    assert [(a.status_code, a.text) for a in answers] == [(200, "success")] * CLIENTS
    with server.db.reader() as s:
        assert _count(s, WeComCallbackReceipt, WeComCallbackReceipt.replay_key == key) == 1
        assert _count(s, WeComContact, WeComContact.external_userid == external) == 1
        assert _count(s, GuideBinding, GuideBinding.member_id == member_id) == 1
        bound = OutboxEvent.type == "guide.customer_bound"
        assert _count(s, OutboxEvent, bound, OutboxEvent.aggregate_id == str(member_id)) == 1
    # Only the copy that applied it asked WeCom who she is; the others found it handled.
    assert Directory.asked.count(external) == 1


def _contact_change(
    user: str, external: str, change: ExternalContactChange
) -> ExternalContactChanged:
    return ExternalContactChanged(
        change_type=change,
        corp_id=CORP,
        created_at=utcnow(),
        user_id=user,
        external_user_id=external,
    )


def test_merges_racing_the_merged_members_wecom_events_move_her_contacts_without_deadlock(
    server: LiveServer,
) -> None:
    db = server.db
    pairs = []
    for _ in range(PAIRS):
        user, duplicate, external = _guide_and_member(db)
        survivor = _guide_and_member(db)[1]
        with db.writer() as s, s.begin():
            added = _contact_change(user, external, ExternalContactChange.ADD_EXTERNAL_CONTACT)
            unionid = external.replace("wm-", "union-")
            assert wecom_contacts.apply_contact_change(s, CIPHER, added, unionid).result == "bound"
        pairs.append((user, external, duplicate, survivor))

    def merge(pair: tuple[str, str, uuid.UUID, uuid.UUID]) -> None:
        with db.writer() as s, s.begin():
            members.merge_members(s, pair[3], pair[2])

    def removed(pair: tuple[str, str, uuid.UUID, uuid.UUID]) -> None:
        change = _contact_change(pair[0], pair[1], ExternalContactChange.DEL_FOLLOW_USER)
        with db.writer() as s, s.begin():
            wecom_contacts.apply_contact_change(s, CIPHER, change, None)

    def client(i: int) -> str | None:
        try:
            (merge if i % 2 == 0 else removed)(pairs[i // 2])
        except DBAPIError as error:
            return f"{type(error.orig).__name__}: {error.orig}"
        return None

    refused = all_at_once(2 * PAIRS, client)

    assert refused == [None] * (2 * PAIRS)
    with db.reader() as s:
        for _, external, duplicate, survivor in pairs:
            contact = s.scalars(
                select(WeComContact).where(WeComContact.external_userid == external)
            ).one()
            # Hers now, removed; and whichever came first, nobody is her guide any more.
            assert (contact.member_id, contact.removed_by) == (survivor, "del_follow_user")
            assert binding.current_binding(s, survivor) is None
            assert binding.current_binding(s, duplicate) is None
