"""A touchpoint meeting her phone while she is being erased: the lookup of her identity and the
read of her row are two statements, and the erasure may commit between them. The touchpoint
must then meet the person as the erasure left her (unknown: a new member), never be handed the
erased pseudonym as if she had just logged in."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember, new_phone
from zhongtai.members import identity, service
from zhongtai.members.identity import IdentityKey
from zhongtai.members.models import IdentityKind, MemberStatus
from zhongtai.members.pii import PiiCipher


def _erased_right_after_her_identity_is_read(
    monkeypatch: pytest.MonkeyPatch, session: Session, member_id: uuid.UUID
) -> None:
    """Make the first lookup of an identity answer as it read, then let the erasure land."""
    read_owner = identity._owner
    landed: list[bool] = []

    def owner_then_erasure(s: Session, key: IdentityKey) -> uuid.UUID | None:
        found = read_owner(s, key)
        if not landed:
            landed.append(True)
            service.erase_member(session, member_id)
        return found

    monkeypatch.setattr(identity, "_owner", owner_then_erasure)


def test_a_till_meeting_her_phone_as_her_erasure_commits_registers_a_new_member(
    monkeypatch: pytest.MonkeyPatch,
    session: Session,
    cipher: PiiCipher,
    make_member: MakeMember,
) -> None:
    phone = new_phone()
    erased = make_member(phone, name="钱芳")
    _erased_right_after_her_identity_is_read(monkeypatch, session, erased.id)

    met, created = service.find_or_create_member(
        session, cipher, IdentityKind.PHONE, phone, via="pos"
    )

    assert created and met.id != erased.id
    assert met.status is MemberStatus.ACTIVE and met.name is None
    assert service.find_member_id(session, cipher, IdentityKind.PHONE, phone) == met.id
    assert service.get_member(session, erased.id).status is MemberStatus.ERASED
