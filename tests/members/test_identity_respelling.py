"""Identities stored under an old spelling (full-width digits, before input was normalised)
are moved to their one spelling, or named when another member holds it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests import migrated
from tests.members.conftest import MakeMember
from zhongtai.core.audit import AuditEntry
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings, get_settings
from zhongtai.members import service as members
from zhongtai.members.cli import app
from zhongtai.members.identity import PHONE_PURPOSE
from zhongtai.members.models import IdentityKind, Member, MemberIdentity
from zhongtai.members.pii import PiiCipher
from zhongtai.members.spellings import Outcome, respell_identities

FULL_WIDTH = "138１２３４１２３４"
NORMAL = "13812341234"


def _stored_as_typed(session: Session, cipher: PiiCipher, member: Member, typed: str) -> None:
    """An identity as earlier versions stored it: hashed and sealed exactly as typed."""
    session.add(
        MemberIdentity(
            member_id=member.id,
            kind=IdentityKind.PHONE,
            lookup_key=cipher.lookup_key(PHONE_PURPOSE, typed),
            ciphertext=cipher.encrypt(typed, purpose=PHONE_PURPOSE),
        )
    )
    session.flush()


def _found_by_phone(session: Session, cipher: PiiCipher, phone: str) -> object:
    return members.find_member_id(session, cipher, IdentityKind.PHONE, phone)


def test_a_full_width_phone_nobody_else_holds_is_respelled_and_found_again(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    her = make_member(name="王芳")
    _stored_as_typed(session, cipher, her, FULL_WIDTH)
    assert _found_by_phone(session, cipher, NORMAL) is None  # unreachable before the repair

    found = respell_identities(session, cipher, apply=True)

    assert [(r.member_id, r.outcome, r.shown) for r in found] == [
        (her.id, Outcome.RESPELLED, "138****1234")
    ]
    assert _found_by_phone(session, cipher, NORMAL) == her.id
    audit = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "member.identity_respelled")
    ).one()
    assert audit.subject_id == str(her.id) and audit.after == {"outcome": "respelled"}
    assert respell_identities(session, cipher, apply=True) == []  # nothing left to do


def test_a_full_width_copy_of_her_own_phone_is_removed(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    her = make_member(NORMAL)
    _stored_as_typed(session, cipher, her, FULL_WIDTH)

    found = respell_identities(session, cipher, apply=True)

    assert [r.outcome for r in found] == [Outcome.DUPLICATE_REMOVED]
    phones = session.scalar(
        select(func.count()).where(MemberIdentity.member_id == her.id).select_from(MemberIdentity)
    )
    assert phones == 1 and _found_by_phone(session, cipher, NORMAL) == her.id


def test_a_phone_another_member_holds_is_named_as_a_collision_and_left_for_a_merge(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    ascii_one = make_member(NORMAL)
    full_width_one = make_member()
    _stored_as_typed(session, cipher, full_width_one, FULL_WIDTH)

    found = respell_identities(session, cipher, apply=True)

    assert [(r.member_id, r.outcome, r.other_member_id) for r in found] == [
        (full_width_one.id, Outcome.COLLISION, ascii_one.id)
    ]
    assert _found_by_phone(session, cipher, NORMAL) == ascii_one.id
    assert session.get(MemberIdentity, found[0].identity_id) is not None  # unchanged


def test_two_members_with_one_stray_spelling_each_the_first_takes_it_the_second_collides(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    first, second = make_member(), make_member()
    _stored_as_typed(session, cipher, first, FULL_WIDTH)
    _stored_as_typed(session, cipher, second, "１３８１２３４１２３４")

    found = respell_identities(session, cipher, apply=True)

    outcomes = {r.member_id: r.outcome for r in found}
    assert sorted(outcomes.values()) == [Outcome.COLLISION, Outcome.RESPELLED]
    winner = next(m for m, o in outcomes.items() if o is Outcome.RESPELLED)
    assert _found_by_phone(session, cipher, NORMAL) == winner


def test_without_apply_nothing_changes(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    her = make_member()
    _stored_as_typed(session, cipher, her, FULL_WIDTH)

    found = respell_identities(session, cipher, apply=False)

    assert [r.outcome for r in found] == [Outcome.RESPELLED]
    assert _found_by_phone(session, cipher, NORMAL) is None
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = migrated.sqlite_file(tmp_path / "cli.db")
    monkeypatch.setenv("ZHONGTAI_DATABASE_URL", url)
    get_settings.cache_clear()
    database = Database.connect(url)
    yield database
    database.dispose()
    get_settings.cache_clear()


def test_the_command_lists_first_applies_with_apply_and_exits_1_while_a_collision_remains(
    db: Database,
) -> None:
    cipher = members.cipher_for(Settings())

    def member(s: Session, phone: str) -> Member:
        return members.find_or_create_member(s, cipher, IdentityKind.PHONE, phone, via="pos")[0]

    with db.writer() as s, s.begin():
        lone = member(s, "13900000000")
        _stored_as_typed(s, cipher, lone, "1３9００００００００")
        held = member(s, NORMAL)
        other = member(s, "13700000000")
        _stored_as_typed(s, cipher, other, FULL_WIDTH)

    listed = CliRunner().invoke(app, ["respell-identities"])
    assert listed.exit_code == 1, listed.output
    assert "would apply (run with --apply): 1 duplicate_removed, 1 collision" in listed.output
    assert str(held.id) in listed.output and "139****0000" in listed.output

    applied = CliRunner().invoke(app, ["respell-identities", "--apply"])
    assert applied.exit_code == 1, applied.output
    assert "applied: 1 duplicate_removed, 1 collision" in applied.output
    with db.reader() as s:
        assert s.scalar(select(func.count()).where(MemberIdentity.member_id == lone.id)) == 1

    with db.writer() as s, s.begin():
        members.merge_members(s, held.id, other.id)
    done = CliRunner().invoke(app, ["respell-identities", "--apply"])
    assert done.exit_code == 0, done.output
    assert "applied: 1 duplicate_removed" in done.output
    assert CliRunner().invoke(app, ["respell-identities"]).output.strip() == (
        "every identity is stored under its one spelling"
    )
