"""On PostgreSQL, with many clients each in its own transaction: an erasure racing the
touchpoints that meet her phone, the merges of her duplicates and the links of her cards never
leaves anything that leads to her, never hands the erased pseudonym to a touchpoint, and never
deadlocks."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.races import MANY_CONNECTIONS, all_at_once, race_database
from zhongtai.core.audit import AuditEntry
from zhongtai.core.db import Database
from zhongtai.core.errors import DomainError
from zhongtai.core.settings import Settings
from zhongtai.members import identity
from zhongtai.members import service as members
from zhongtai.members.identity import IdentityKey
from zhongtai.members.models import IdentityKind, Member, MemberIdentity, MemberStatus
from zhongtai.members.pii import cipher_for

pytestmark = MANY_CONNECTIONS
CLIENTS = 24
SETTINGS = Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef")  # type: ignore[arg-type]
CIPHER = cipher_for(SETTINGS)
_phones = itertools.count(13700000001)


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_member_erasure_race", pool_size=CLIENTS + 2) as database:
        yield database


def _member(db: Database, name: str) -> tuple[uuid.UUID, str]:
    phone = str(next(_phones))
    with db.writer() as s, s.begin():
        member, _ = members.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, phone, via="pos", name=name
        )
        return member.id, phone


@dataclass(frozen=True)
class Met:
    member_id: uuid.UUID
    created: bool
    status: MemberStatus
    name: str | None


def _identify(db: Database, phone: str) -> Met:
    with db.writer() as s, s.begin():
        member, created = members.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, phone, via="app"
        )
        return Met(member.id, created, member.status, member.name)


def _erase(db: Database, member_id: uuid.UUID) -> None:
    with db.writer() as s, s.begin():
        members.erase_member(s, member_id)


def test_a_touchpoint_whose_lookup_her_erasure_overtakes_registers_a_new_member_not_the_erased(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made to happen every time: the touchpoint has read who owns her phone; the erasure, in a
    transaction of its own, commits before the touchpoint reads her row."""
    erased, phone = _member(db, "钱芳")
    owner_read, erasure_committed = threading.Event(), threading.Event()
    read_owner = identity._owner

    def owner_then_wait(s: object, key: IdentityKey) -> uuid.UUID | None:
        found = read_owner(s, key)  # type: ignore[arg-type]
        if not owner_read.is_set():
            owner_read.set()
            assert erasure_committed.wait(timeout=30)
        return found

    monkeypatch.setattr(identity, "_owner", owner_then_wait)

    def client(i: int) -> Met | None:
        if i == 0:
            return _identify(db, phone)
        assert owner_read.wait(timeout=30)
        _erase(db, erased)
        erasure_committed.set()
        return None

    met, _ = all_at_once(2, client)

    assert met is not None
    assert met.member_id != erased and met.created
    assert (met.status, met.name) == (MemberStatus.ACTIVE, None)
    with db.reader() as s:
        assert members.find_member_id(s, CIPHER, IdentityKind.PHONE, phone) == met.member_id


@pytest.mark.parametrize("round_", range(3))
def test_touchpoints_meeting_her_phone_while_she_is_erased_never_get_the_erased_member(
    db: Database, round_: int
) -> None:
    erased, phone = _member(db, "孙丽")

    def client(i: int) -> Met | None:
        if i == CLIENTS // 2:
            _erase(db, erased)
            return None
        return _identify(db, phone)

    met = [m for m in all_at_once(CLIENTS, client) if m is not None]

    assert all(m.status is MemberStatus.ACTIVE for m in met)
    before = [m for m in met if m.member_id == erased]
    after = [m for m in met if m.member_id != erased]
    assert all(m.name == "孙丽" and not m.created for m in before)
    # Whoever met her after the erasure met one new member, created once.
    assert len({m.member_id for m in after}) <= 1
    assert sum(m.created for m in after) == (1 if after else 0)
    with db.reader() as s:
        assert s.get(Member, erased).status is MemberStatus.ERASED  # type: ignore[union-attr]
        now = members.find_member_id(s, CIPHER, IdentityKind.PHONE, phone)
        assert now is None or now == after[0].member_id
        assert (
            s.scalar(
                select(func.count())
                .select_from(MemberIdentity)
                .where(MemberIdentity.member_id == erased)
            )
            == 0
        )


def test_an_erasure_racing_merges_of_her_duplicates_and_links_of_her_cards_leaves_nothing_of_her(
    db: Database,
) -> None:
    survivor, survivor_phone = _member(db, "周婷")
    duplicates = [_member(db, f"周婷{i}") for i in range(CLIENTS // 2 - 1)]
    cards = [f"RACE-CARD-{uuid.uuid4().hex[:10]}" for _ in range(CLIENTS // 2)]

    def client(i: int) -> str:
        try:
            with db.writer() as s, s.begin():
                if i == 0:
                    members.erase_member(s, survivor)
                elif i <= len(duplicates):
                    members.merge_members(s, survivor, duplicates[i - 1][0])
                else:
                    members.link_identity(
                        s, CIPHER, survivor, IdentityKind.POS_CARD, cards[i - len(duplicates) - 1]
                    )
        except DomainError as refused:
            return refused.slug
        return "done"

    outcomes = all_at_once(1 + len(duplicates) + len(cards), client)

    assert outcomes[0] == "done"
    assert set(outcomes[1:]) <= {"done", "conflict", "member-erased"}
    with db.reader() as s:
        [entry] = s.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "member.erased", AuditEntry.subject_id == str(survivor)
            )
        ).all()
        erased_with_her = set(entry.after["merged_member_ids"])  # type: ignore[index]
        for (duplicate, phone), outcome in zip(duplicates, outcomes[1:], strict=False):
            row = s.get(Member, duplicate)
            assert row is not None
            if outcome == "done":  # merged before the erasure: forgotten with her
                assert str(duplicate) in erased_with_her
                assert (row.status, row.merged_into_id, row.name) == (
                    MemberStatus.MERGED,
                    survivor,
                    None,
                )
                assert members.find_member_id(s, CIPHER, IdentityKind.PHONE, phone) is None
            else:  # refused: she was erased first; the duplicate stays a person of her own
                assert str(duplicate) not in erased_with_her
                assert row.status is MemberStatus.ACTIVE and row.name is not None
                assert members.find_member_id(s, CIPHER, IdentityKind.PHONE, phone) == duplicate
        ids = members.member_ids_of(s, survivor)
        assert (
            s.scalar(
                select(func.count())
                .select_from(MemberIdentity)
                .where(MemberIdentity.member_id.in_(ids))
            )
            == 0
        )
        assert members.find_member_id(s, CIPHER, IdentityKind.PHONE, survivor_phone) is None
        for card in cards:
            assert members.find_member_id(s, CIPHER, IdentityKind.POS_CARD, card) is None
        assert s.scalars(select(Member.name).where(Member.id.in_(ids))).all() == [None] * len(ids)
