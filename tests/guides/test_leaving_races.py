"""On PostgreSQL, a guide's leaving raced by what binds customers — her own touches (a share link
opened, a WeCom contact added), a manager's reassignment, a colleague leaving too — never leaves
a customer bound to a guide who has left, nor takes one back from where a manager moved her.

Each race is played deterministically: one side runs in a transaction left open, the other
starts and is seen waiting for a lock, then the first commits and the second goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.factories import Factory, password_hash
from tests.races import race_database, until_another_backend_waits_for_a_lock
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
from zhongtai.guides import binding, roster, share_links, wecom_contacts
from zhongtai.guides.binding import BindingOutcome
from zhongtai.guides.binding_rules import BindingSource, BindingVerdict
from zhongtai.guides.models import Guide, GuideBinding, GuideStatus
from zhongtai.integrations.wecom.messages import ExternalContactChange, ExternalContactChanged
from zhongtai.members import service as members
from zhongtai.members.models import IdentityKind
from zhongtai.members.pii import cipher_for

pytestmark = pytest.mark.postgres_only
SETTINGS = Settings(secret_key="leaving-race-secret-0123456789abcdef0123456789")  # type: ignore[arg-type]
CIPHER = cipher_for(SETTINGS)
First = TypeVar("First")
Then = TypeVar("Then")
_seq = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_guide_leaving", pool_size=6) as database:
        yield database


def _guides(db: Database, count: int) -> list[uuid.UUID]:
    """``count`` guides of one new store, each with a WeCom account named after her id."""
    n = next(_seq)
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        ids = []
        for g in range(count):
            staff = auth.create_staff_user(
                s,
                username=f"leaving-guide-{n}-{g}",
                display_name="guide",
                role=Role.GUIDE,
                password="race-password-123",
                password_hash=password_hash("race-password-123"),
                store_ids=[store.id],
            )
            ids.append(roster.enroll_guide(s, staff.id, wecom_userid=f"wx-{staff.id}").staff_id)
        return ids


def _member(db: Database) -> uuid.UUID:
    """A member known by her phone and by her WeChat unionid (``union-<her id>``)."""
    with db.writer() as s, s.begin():
        member, _ = members.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, f"138{next(_seq):08d}", via="app"
        )
        members.link_identity(
            s, CIPHER, member.id, IdentityKind.WECHAT_UNIONID, _unionid(member.id)
        )
        return member.id


def _unionid(member_id: uuid.UUID) -> str:
    return f"union-{member_id}"


def _customers_of(db: Database, guide_id: uuid.UUID, count: int, at: datetime) -> list[uuid.UUID]:
    customers = [_member(db) for _ in range(count)]
    with db.writer() as s, s.begin():
        for member_id in customers:
            binding.touch_member(s, member_id, guide_id, BindingSource.WECOM, at=at)
    return customers


def _guide_of(db: Database, member_id: uuid.UUID) -> uuid.UUID | None:
    with db.reader() as s:
        return s.scalar(
            select(GuideBinding.guide_id).where(
                GuideBinding.member_id == member_id, GuideBinding.ended_at.is_(None)
            )
        )


def _has_left(db: Database, guide_id: uuid.UUID) -> bool:
    with db.reader() as s:
        return s.scalar(select(Guide.status).where(Guide.staff_id == guide_id)) is GuideStatus.LEFT


def _while_open(
    db: Database, first: Callable[[Session], First], then: Callable[[Session], Then]
) -> tuple[First, Then]:
    """``first`` in a transaction left open; ``then`` in a transaction of its own, started once
    ``first`` is done and seen waiting for a lock ``first`` holds; then ``first`` commits and
    ``then`` goes on. Both answers."""

    def run_then() -> Then:
        with db.writer() as s, s.begin():
            return then(s)

    # The open transaction is closed (rolled back on failure) before the pool waits for `then`.
    with ThreadPoolExecutor(1) as pool, db.writer() as s:
        first_answer = first(s)
        own_pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        later = pool.submit(run_then)
        try:
            until_another_backend_waits_for_a_lock(db, own_pid)
        except AssertionError:
            if later.done():
                later.result()  # a failure of its own, if it failed, says more than no wait
            raise
        s.commit()
        return first_answer, later.result(timeout=30)


def _opens_her_share_link(
    db: Database, guide_id: uuid.UUID, member_id: uuid.UUID, at: datetime
) -> Callable[[Session], BindingOutcome]:
    with db.writer() as s, s.begin():
        # Shared an hour ago: a token is not valid before its issue time.
        shared_at = at - timedelta(hours=1)
        token = share_links.create_share_link(s, SETTINGS, guide_id, at=shared_at).token
    return lambda s: (
        share_links.open_share_link(s, SETTINGS, token, member_id, channel="app", at=at).binding
    )


def _adds_her_on_wecom(
    db: Database, guide_id: uuid.UUID, member_id: uuid.UUID, at: datetime
) -> Callable[[Session], BindingOutcome]:
    change = ExternalContactChanged(
        change_type=ExternalContactChange.ADD_EXTERNAL_CONTACT,
        corp_id="ww-race",
        created_at=at,
        user_id=f"wx-{guide_id}",
        external_user_id=f"wm-{member_id}",
    )

    def add(s: Session) -> BindingOutcome:
        outcome = wecom_contacts.apply_contact_change(s, CIPHER, change, _unionid(member_id))
        assert outcome.result == "refused" and outcome.binding is not None
        return outcome.binding

    return add


def _is_reassigned_to_her(
    db: Database, guide_id: uuid.UUID, member_id: uuid.UUID, at: datetime
) -> Callable[[Session], BindingOutcome]:
    def reassign(s: Session) -> BindingOutcome:
        [outcome] = binding.reassign_customers(s, [member_id], guide_id, at=at)
        return outcome

    return reassign


@pytest.mark.parametrize(
    "touch",
    [_opens_her_share_link, _adds_her_on_wecom, _is_reassigned_to_her],
    ids=["share_link_opened", "wecom_contact_added", "manager_reassigns_to_her"],
)
def test_a_touch_racing_her_leaving_never_binds_a_customer_to_a_guide_who_has_left(
    db: Database,
    touch: Callable[[Database, uuid.UUID, uuid.UUID, datetime], Callable[[Session], object]],
) -> None:
    leaving, colleague = _guides(db, 2)
    now = utcnow()
    hers = _customers_of(db, leaving, 2, now - timedelta(days=1))
    newcomer = _member(db)
    touches_her = touch(db, leaving, newcomer, now + timedelta(seconds=1))

    departure, outcome = _while_open(
        db, lambda s: roster.guide_leaves(s, leaving, at=now), touches_her
    )

    assert departure.handed_over == {colleague: 2}
    assert _has_left(db, leaving)
    # The touch waited for her leaving and then bound nobody, as for any guide who has left.
    assert isinstance(outcome, BindingOutcome)
    assert (outcome.decision.verdict, outcome.decision.reason) == (
        BindingVerdict.REFUSE,
        "guide_not_active",
    )
    assert (outcome.member_id, outcome.guide_id, outcome.binding_id) == (newcomer, None, None)
    assert _guide_of(db, newcomer) is None
    assert [_guide_of(db, m) for m in hers] == [colleague, colleague]


def test_a_touch_that_got_in_before_her_leaving_is_handed_over_with_her_other_customers(
    db: Database,
) -> None:
    leaving, colleague = _guides(db, 2)
    now = utcnow()
    hers = _customers_of(db, leaving, 2, now - timedelta(days=1))
    newcomer = _member(db)

    outcome, departure = _while_open(
        db,
        lambda s: binding.touch_member(
            s, newcomer, leaving, BindingSource.SHARE_LINK, at=now - timedelta(seconds=1)
        ),
        lambda s: roster.guide_leaves(s, leaving, at=now),
    )

    assert outcome.guide_id == leaving  # she was still a guide when the link was opened
    assert departure.handed_over == {colleague: 3}
    assert [_guide_of(db, m) for m in [*hers, newcomer]] == [colleague] * 3


def test_two_colleagues_leaving_at_once_leave_every_customer_with_the_guide_who_stays(
    db: Database,
) -> None:
    first, second, staying = _guides(db, 3)
    long_ago = utcnow() - timedelta(days=30)
    firsts = _customers_of(db, first, 2, long_ago)
    seconds = _customers_of(db, second, 2, long_ago)
    # The one who stays is the busiest: each leaver alone would hand her customers to the other.
    _customers_of(db, staying, 10, long_ago)
    now = utcnow()

    departed_first, departed_second = _while_open(
        db,
        lambda s: roster.guide_leaves(s, first, at=now),
        lambda s: roster.guide_leaves(s, second, at=now + timedelta(seconds=1)),
    )

    assert _has_left(db, first) and _has_left(db, second)
    assert [_guide_of(db, m) for m in [*firsts, *seconds]] == [staying] * 4
    # The second leaver found the customers the first had just handed to her, and passed them on.
    assert departed_first.handed_over == {second: 2}
    assert departed_second.handed_over == {staying: 4}


def test_a_colleague_leaving_while_her_leaving_is_under_way_hands_her_no_customer(
    db: Database,
) -> None:
    leaving, colleague, staying = _guides(db, 3)
    long_ago = utcnow() - timedelta(days=30)
    colleagues = _customers_of(db, colleague, 2, long_ago)
    _customers_of(db, staying, 10, long_ago)  # the leaving one, with none, would be chosen
    now = utcnow()

    departed, colleague_departed = _while_open(
        db,
        lambda s: roster.guide_leaves(s, leaving, at=now),
        lambda s: roster.guide_leaves(s, colleague, at=now + timedelta(seconds=1)),
    )

    assert departed.handed_over == {}
    assert colleague_departed.handed_over == {staying: 2}
    assert [_guide_of(db, m) for m in colleagues] == [staying] * 2


def test_a_handover_leaves_a_customer_the_manager_moved_away_meanwhile_with_his_choice(
    db: Database,
) -> None:
    leaving, successor, chosen = _guides(db, 3)
    now = utcnow()
    moved, stays_hers = _customers_of(db, leaving, 2, now - timedelta(days=1))

    reassigned, departure = _while_open(
        db,
        lambda s: binding.reassign_customers(s, [moved], chosen, at=now),
        lambda s: roster.guide_leaves(
            s, leaving, at=now + timedelta(seconds=1), successor_id=successor
        ),
    )

    assert [o.guide_id for o in reassigned] == [chosen]
    assert _guide_of(db, moved) == chosen  # no longer hers when her leaving reached her
    assert _guide_of(db, stays_hers) == successor
    assert departure.handed_over == {successor: 1}
