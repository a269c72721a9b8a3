"""Find-or-create by any identity, linking identities, and phones kept only encrypted."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember, new_phone
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.outbox import OutboxEvent
from zhongtai.core.settings import Settings
from zhongtai.members import service
from zhongtai.members.errors import IdentityTaken
from zhongtai.members.models import IdentityKind, MemberIdentity
from zhongtai.members.pii import PiiCipher, PiiKeyInvalid, cipher_for


def test_the_first_sight_of_a_phone_creates_a_member_and_the_next_finds_her(
    session: Session, cipher: PiiCipher
) -> None:
    first, created = service.find_or_create_member(
        session, cipher, IdentityKind.PHONE, "13912345678", via="pos", name="李娜"
    )
    again, created_again = service.find_or_create_member(
        session, cipher, IdentityKind.PHONE, "+86 139-1234-5678", via="app", name="别的名字"
    )
    assert created and not created_again
    assert again.id == first.id
    assert again.name == "李娜"  # a found member's profile is not overwritten
    events = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.type == "member.registered", OutboxEvent.aggregate_id == str(first.id)
        )
    ).all()
    assert len(events) == 1
    assert "13912345678" not in str(events[0].payload)


def test_a_phone_is_stored_only_encrypted_with_a_keyed_hash_for_lookup(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    phone = new_phone()
    member = make_member(phone)
    raw = session.execute(
        select(MemberIdentity.lookup_key, MemberIdentity.ciphertext).where(
            MemberIdentity.member_id == member.id
        )
    ).one()
    assert phone not in raw[0]
    assert phone.encode() not in bytes(raw[1])
    assert cipher.decrypt(bytes(raw[1]), purpose="phone") == phone


def test_two_encryptions_of_one_phone_differ_but_its_lookup_key_does_not(
    cipher: PiiCipher,
) -> None:
    a = cipher.encrypt("13812341234", purpose="phone")
    b = cipher.encrypt("13812341234", purpose="phone")
    assert a != b
    assert cipher.lookup_key("phone", "13812341234") == cipher.lookup_key("phone", "13812341234")


def test_another_pii_key_neither_finds_nor_opens_the_phone(settings: Settings) -> None:
    mine = cipher_for(settings)
    other = cipher_for(
        settings.model_copy(update={"pii_key": None, "secret_key": SecretStr("x" * 40)})
    )
    blob = mine.encrypt("13812341234", purpose="phone")
    assert other.lookup_key("phone", "13812341234") != mine.lookup_key("phone", "13812341234")
    with pytest.raises(ValueError, match="does not open"):
        other.decrypt(blob, purpose="phone")


def test_a_pii_key_that_is_not_base64_of_32_bytes_is_refused(settings: Settings) -> None:
    for bad in ("not base64!", "c2hvcnQ="):
        with pytest.raises(PiiKeyInvalid):
            cipher_for(settings.model_copy(update={"pii_key": SecretStr(bad)}))


def test_a_malformed_phone_is_a_422_naming_value_and_creates_nobody(
    session: Session, cipher: PiiCipher
) -> None:
    with pytest.raises(InvalidInput) as refused:
        service.find_or_create_member(session, cipher, IdentityKind.PHONE, "12345", via="pos")
    assert [e["field"] for e in refused.value.errors or []] == ["value"]
    assert "11 digits" in refused.value.detail


def test_a_member_found_by_a_linked_openid_is_the_same_person(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    member = make_member()
    service.link_identity(session, cipher, member.id, IdentityKind.WECHAT_OPENID, "oWx-123456789")
    found, created = service.find_or_create_member(
        session, cipher, IdentityKind.WECHAT_OPENID, "oWx-123456789", via="mini_program"
    )
    assert (found.id, created) == (member.id, False)
    # Linking what she already has changes nothing.
    service.link_identity(session, cipher, member.id, IdentityKind.WECHAT_OPENID, "oWx-123456789")
    assert len(service.identities_of(session, member.id)) == 2


def test_linking_another_members_identity_is_refused_naming_its_owner(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    phone = new_phone()
    owner, other = make_member(phone), make_member()
    with pytest.raises(IdentityTaken) as taken:
        service.link_identity(session, cipher, other.id, IdentityKind.PHONE, phone)
    assert taken.value.extra["member_id"] == str(owner.id)


def test_an_unknown_member_id_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        service.get_member(session, uuid.uuid4())


def test_a_pii_key_set_in_settings_is_used_instead_of_the_derived_one(settings: Settings) -> None:
    import base64

    key = SecretStr(base64.b64encode(bytes(range(32))).decode())
    configured = cipher_for(settings.model_copy(update={"pii_key": key}))
    derived = cipher_for(settings)
    assert configured.lookup_key("phone", "1") != derived.lookup_key("phone", "1")
