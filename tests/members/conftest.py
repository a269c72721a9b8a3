"""Builders the members and loyalty tests share: the PII cipher and members by phone."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from zhongtai.core.settings import Settings
from zhongtai.members import service
from zhongtai.members.models import IdentityKind, Member
from zhongtai.members.pii import PiiCipher, cipher_for

_phones = itertools.count(13800000001)

MakeMember = Callable[..., Member]


def new_phone() -> str:
    return str(next(_phones))


@pytest.fixture
def cipher(settings: Settings) -> PiiCipher:
    return cipher_for(settings)


@pytest.fixture
def make_member(session: Session, cipher: PiiCipher) -> MakeMember:
    """A new member found by a fresh phone number (or the one given)."""

    def make(phone: str | None = None, **profile: object) -> Member:
        member, _ = service.find_or_create_member(
            session, cipher, IdentityKind.PHONE, phone or new_phone(), via="pos", **profile
        )
        return member

    return make
