"""On PostgreSQL, guides leaving (their customers handed over) and managers reassigning many of
the same customers at once, each list in another order, all finish — none is chosen as a
deadlock victim — and leave every customer with exactly one current guide, one who stays.

Every client locks guides first, then members in the order of their ids, whatever order the
manager listed them in and whatever order the leave hands them over in.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from tests.factories import Factory, password_hash
from tests.races import all_at_once, race_database
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.guides import binding, roster
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.models import Guide, GuideBinding, GuideStatus
from zhongtai.members.models import Member

pytestmark = pytest.mark.postgres_only
CUSTOMERS_EACH = 12
ROUNDS = 3
_seq = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_guide_handover", pool_size=8) as database:
        yield database


def _guides(db: Database, count: int) -> list[uuid.UUID]:
    """``count`` guides of one new store, in the order of their ids."""
    n = next(_seq)
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        ids = []
        for g in range(count):
            staff = auth.create_staff_user(
                s,
                username=f"handover-guide-{n}-{g}",
                display_name="guide",
                role=Role.GUIDE,
                password="race-password-123",
                password_hash=password_hash("race-password-123"),
                store_ids=[store.id],
            )
            ids.append(roster.enroll_guide(s, staff.id).staff_id)
        return sorted(ids)


def _customers_of(db: Database, guide_id: uuid.UUID, since: datetime) -> list[uuid.UUID]:
    """New customers of hers, the newest members bound first: her leave hands them over in
    the opposite order of their ids."""
    with db.writer() as s, s.begin():
        ids = []
        for _ in range(CUSTOMERS_EACH):
            member = Member(registered_via="pos", tags=[], preferences={})
            s.add(member)
            s.flush()
            ids.append(member.id)
        for i, member_id in enumerate(sorted(ids, reverse=True)):
            at = since + timedelta(minutes=i)
            binding.touch_member(s, member_id, guide_id, BindingSource.WECOM, at=at)
        return ids


def _client(db: Database, work: Callable[..., object]) -> Callable[[], str | None]:
    """The work in a transaction of its own; what the database refused it, if anything."""

    def run() -> str | None:
        try:
            with db.writer() as s, s.begin():
                work(s)
        except DBAPIError as error:
            return f"{type(error.orig).__name__}: {error.orig}"
        return None

    return run


def _one_round(db: Database, shuffle: random.Random) -> None:
    first_leaving, second_leaving, staying, also_staying = _guides(db, 4)
    long_ago = utcnow() - timedelta(days=60)
    customers = sorted(
        _customers_of(db, first_leaving, long_ago) + _customers_of(db, second_leaving, long_ago)
    )
    mixed = customers[:]
    shuffle.shuffle(mixed)
    now = utcnow()

    def leaves(guide_id: uuid.UUID) -> Callable[..., object]:
        return lambda s: roster.guide_leaves(s, guide_id, at=now)

    def reassigns(members: list[uuid.UUID], to: uuid.UUID) -> Callable[..., object]:
        return lambda s: binding.reassign_customers(s, members, to, at=now)

    clients = [
        _client(db, leaves(first_leaving)),
        _client(db, reassigns(customers, staying)),
        _client(db, reassigns(customers[::-1], also_staying)),
        _client(db, leaves(second_leaving)),
        _client(db, reassigns(mixed, staying)),
        _client(db, reassigns(mixed[::-1], also_staying)),
    ]

    refused = all_at_once(len(clients), lambda i: clients[i]())

    assert refused == [None] * len(clients)
    with db.reader() as s:
        statuses = set(
            s.scalars(
                select(Guide.status).where(Guide.staff_id.in_([first_leaving, second_leaving]))
            )
        )
        current = s.execute(
            select(GuideBinding.member_id, func.count(), func.min(Guide.status))
            .join(Guide, Guide.staff_id == GuideBinding.guide_id)
            .where(GuideBinding.member_id.in_(customers), GuideBinding.ended_at.is_(None))
            .group_by(GuideBinding.member_id)
        ).all()
    assert statuses == {GuideStatus.LEFT}
    # Each customer has one current guide, and she is one who stays.
    assert sorted(current) == [(m, 1, GuideStatus.ACTIVE) for m in customers]


def test_leaves_and_reassignments_of_the_same_customers_at_once_never_deadlock(
    db: Database,
) -> None:
    shuffle = random.Random(20261125)
    for _ in range(ROUNDS):
        _one_round(db, shuffle)
