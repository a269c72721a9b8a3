"""One person, one member, however a touchpoint spells her number: a Chinese keyboard's
full-width digits and signs are the same number; digits of other scripts are no number at all."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import new_phone
from zhongtai.core.auth.roles import Channel
from zhongtai.members import rules, service
from zhongtai.members.models import IdentityKind, MemberIdentity
from zhongtai.members.pii import PiiCipher

IDENTIFY = "/api/v1/members/identify"
FULL_WIDTH = str.maketrans("0123456789+-() ", "０１２３４５６７８９＋－（）\u3000")


def full_width(text: str) -> str:
    """The text as a Chinese IME in full-width mode types it."""
    return text.translate(FULL_WIDTH)


@pytest.mark.parametrize(
    "spelling",
    [
        "１３８１２３４１２３４",
        "138１２３４１２３４",
        "＋８６\u3000１３８－１２３４－１２３４",
        "（+86）138 1234 1234",
        "０086 13812341234",
    ],
)
def test_a_number_typed_in_full_width_normalises_to_its_11_ascii_digits(spelling: str) -> None:
    assert rules.normalize_identity(IdentityKind.PHONE, spelling) == "13812341234"


@pytest.mark.parametrize(
    "spelling",
    [
        "1381234123\u0664",  # ARABIC-INDIC DIGIT FOUR
        "13\u096e12341234",  # DEVANAGARI DIGIT EIGHT
        "1381234123\U0001d7dc",  # MATHEMATICAL DOUBLE-STRUCK DIGIT FOUR
    ],
)
def test_digits_of_other_scripts_never_make_a_number_apart_from_its_ascii_twin(
    spelling: str,
) -> None:
    """Python's ``\\d`` takes them: kept as typed, the number would never meet its ASCII twin.
    Refused, or read as the ASCII digits they are compatible with, never kept as typed."""
    try:
        normal = rules.normalize_identity(IdentityKind.PHONE, spelling)
    except rules.IdentityValueInvalid:
        return
    assert normal.isascii() and normal.isdigit() and len(normal) == 11


def test_a_pos_card_typed_in_full_width_is_the_same_card() -> None:
    assert rules.normalize_identity(IdentityKind.POS_CARD, "８８００１２３") == "8800123"


def test_a_member_registered_with_ascii_digits_is_found_by_her_number_typed_in_full_width(
    session: Session, cipher: PiiCipher
) -> None:
    phone = new_phone()
    first, created = service.find_or_create_member(
        session, cipher, IdentityKind.PHONE, phone, via="pos"
    )
    mixed = phone[:3] + full_width(phone[3:])
    for spelling in (full_width(phone), mixed, full_width(f"+86 {phone[:3]}-{phone[3:]}")):
        again, created_again = service.find_or_create_member(
            session, cipher, IdentityKind.PHONE, spelling, via="mini_program"
        )
        assert created and not created_again
        assert again.id == first.id
    held = session.scalar(
        select(func.count())
        .select_from(MemberIdentity)
        .where(MemberIdentity.kind == IdentityKind.PHONE, MemberIdentity.member_id == first.id)
    )
    assert held == 1


def test_the_mini_program_typing_her_number_in_full_width_finds_the_member_the_till_made(
    client: TestClient, factory: Factory
) -> None:
    pos = factory.api_key_headers(Channel.POS)
    mini = factory.api_key_headers(Channel.MINI_PROGRAM)
    phone = new_phone()
    made = client.post(IDENTIFY, json={"kind": "phone", "value": phone}, headers=pos)
    assert made.status_code == 201, made.text
    found = client.post(
        IDENTIFY, json={"kind": "phone", "value": phone[:3] + full_width(phone[3:])}, headers=mini
    )
    assert found.status_code == 200, found.text
    assert found.json()["created"] is False
    assert found.json()["member"]["id"] == made.json()["member"]["id"]


def test_a_number_with_digits_of_another_script_is_a_422_naming_value(
    client: TestClient, factory: Factory
) -> None:
    app = factory.api_key_headers(Channel.APP)
    r = client.post(IDENTIFY, json={"kind": "phone", "value": "1381234123\u0664"}, headers=app)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["value"]
