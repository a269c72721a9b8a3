"""On PostgreSQL, many guides touching one member at the same moment — share links opened on
several phones, WeCom events, till sales — leave her with exactly one current guide, a
handover racing new touches loses no customer, and colleagues leaving together amid their own
touches neither deadlock nor leave a customer with one of them. Each client works in its own
transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.factories import Factory, password_hash
from tests.races import MANY_CONNECTIONS, all_at_once, race_database
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
from zhongtai.guides import binding, roster
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.models import GuideBinding
from zhongtai.members import service as members
from zhongtai.members.models import IdentityKind
from zhongtai.members.pii import cipher_for

pytestmark = MANY_CONNECTIONS
CLIENTS = 24
SETTINGS = Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef")  # type: ignore[arg-type]
_seq = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_guide_race", pool_size=CLIENTS + 2) as database:
        yield database


def _store_with_guides(db: Database, guides: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    n = next(_seq)
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        ids = []
        for g in range(guides):
            staff = auth.create_staff_user(
                s,
                username=f"race-guide-{n}-{g}",
                display_name="guide",
                role=Role.GUIDE,
                password="race-password-123",
                password_hash=password_hash("race-password-123"),
                store_ids=[store.id],
            )
            ids.append(roster.enroll_guide(s, staff.id).staff_id)
        return store.id, ids


def _member(db: Database) -> uuid.UUID:
    with db.writer() as s, s.begin():
        member, _ = members.find_or_create_member(
            s, cipher_for(SETTINGS), IdentityKind.PHONE, f"139{next(_seq):08d}", via="app"
        )
        return member.id


def _current(db: Database, member_id: uuid.UUID) -> list[uuid.UUID]:
    with db.reader() as s:
        return list(
            s.scalars(
                select(GuideBinding.guide_id).where(
                    GuideBinding.member_id == member_id, GuideBinding.ended_at.is_(None)
                )
            )
        )


def test_guides_racing_to_bind_one_member_leave_her_exactly_one_guide(db: Database) -> None:
    _, guides = _store_with_guides(db, CLIENTS)
    member_id = _member(db)
    now = utcnow()

    def touch(i: int) -> uuid.UUID | None:
        with db.writer() as s, s.begin():
            outcome = binding.touch_member(
                s, member_id, guides[i], BindingSource.SHARE_LINK, at=now
            )
            return outcome.guide_id

    answers = all_at_once(CLIENTS, touch)
    [winner] = _current(db, member_id)
    assert answers.count(winner) == CLIENTS  # every client was told the same current guide
    with db.reader() as s:
        rows = s.scalar(
            select(func.count())
            .select_from(GuideBinding)
            .where(GuideBinding.member_id == member_id)
        )
    assert rows == 1


def test_a_handover_racing_new_touches_leaves_every_customer_with_one_active_guide(
    db: Database,
) -> None:
    _, (leaving, colleague, *others) = _store_with_guides(db, 6)
    customers = [_member(db) for _ in range(12)]
    now = utcnow()
    with db.writer() as s, s.begin():
        for member_id in customers:
            binding.touch_member(s, member_id, leaving, BindingSource.WECOM, at=now)

    def work(i: int) -> Any:
        with db.writer() as s, s.begin():
            if i == 0:
                return roster.guide_leaves(s, leaving, at=now + timedelta(seconds=1))
            member_id = customers[i % len(customers)]
            guide = others[i % len(others)]
            return binding.touch_member(
                s, member_id, guide, BindingSource.SHARE_LINK, at=now + timedelta(seconds=2)
            ).guide_id

    all_at_once(CLIENTS, work)
    for member_id in customers:
        current = _current(db, member_id)
        assert len(current) == 1
        assert current[0] != leaving
        assert current[0] in {colleague, *others}


def test_colleagues_leaving_at_once_amid_their_own_touches_leave_every_customer_with_who_stays(
    db: Database,
) -> None:
    _, (staying, *leavers) = _store_with_guides(db, 6)
    now = utcnow()
    theirs = [_member(db) for _ in range(3 * len(leavers))]
    with db.writer() as s, s.begin():
        for n, member_id in enumerate(theirs):
            binding.touch_member(
                s, member_id, leavers[n % len(leavers)], BindingSource.WECOM, at=now
            )
    newcomers = [_member(db) for _ in range(CLIENTS - len(leavers))]

    def work(i: int) -> None:
        with db.writer() as s, s.begin():
            if i < len(leavers):
                roster.guide_leaves(s, leavers[i], at=now + timedelta(seconds=1))
            else:
                binding.touch_member(
                    s,
                    newcomers[i - len(leavers)],
                    leavers[i % len(leavers)],
                    BindingSource.SHARE_LINK,
                    at=now + timedelta(seconds=1),
                )

    all_at_once(CLIENTS, work)  # no leave fails, none deadlocks with another
    assert [_current(db, m) for m in theirs] == [[staying]] * len(theirs)
    # A touch either came before its guide's leaving (and was handed over) or bound nobody.
    assert {tuple(_current(db, m)) for m in newcomers} <= {(staying,), ()}
