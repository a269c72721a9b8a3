"""On PostgreSQL: an Idempotency-Key answer holding her data stored while she is being erased.
Whichever commits first, no answer with her data is left: an answer stored while her erasure
is in flight waits for it and is stored forgotten; an erasure meeting such an answer in flight
waits for its commit and then forgets it."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.races import race_database, until_another_backend_waits_for_a_lock
from zhongtai.core import idempotency
from zhongtai.core.db import Database
from zhongtai.core.idempotency import IdempotencyRecord
from zhongtai.core.settings import Settings
from zhongtai.members import service as members
from zhongtai.members.hooks import member_subject
from zhongtai.members.models import IdentityKind
from zhongtai.members.pii import cipher_for

pytestmark = pytest.mark.postgres_only
CIPHER = cipher_for(Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef"))  # type: ignore[arg-type]
NAME = "钱芳"
_phones = itertools.count(13500000001)
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def race_db() -> Iterator[Database]:
    with race_database("zt_replay_erasure", pool_size=4) as database:
        yield database


def _member(db: Database) -> uuid.UUID:
    with db.writer() as s, s.begin():
        member, _ = members.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, str(next(_phones)), via="pos", name=NAME
        )
        return member.id


def _answer(s: Session, key: str, member_id: uuid.UUID) -> None:
    """What a keyed identify does with her: claim the key, store its answer as hers."""
    claimed = idempotency.claim(s, "api_key:till", key, "f" * 64)
    body = f'{{"member":{{"id":"{member_id}","name":"{NAME}"}}}}'.encode()
    idempotency.record_response(
        s, claimed, 200, "application/json", body, member_subject(member_id)
    )


def _first_in_flight(
    db: Database, first: Callable[[Session], object], then: Callable[[], object]
) -> None:
    """``first`` done in a transaction left open while ``then`` starts on a thread of its own;
    once ``then`` waits for a lock ``first`` holds, ``first`` commits."""
    failed: list[Exception] = []

    def run() -> None:
        try:
            then()
        except Exception as error:  # reported below, in the test's own thread
            failed.append(error)

    with db.writer() as s:
        first(s)
        s.flush()
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive(), "the second did not wait for the first"
        until_another_backend_waits_for_a_lock(db, pid)
        s.commit()
        thread.join(timeout=30)
    assert not thread.is_alive() and failed == []


def _stored(db: Database, key: str) -> tuple[bytes | None, bool]:
    with db.reader() as s:
        body, forgotten_at = s.execute(
            select(IdempotencyRecord.body, IdempotencyRecord.forgotten_at).where(
                IdempotencyRecord.key == key
            )
        ).one()
        return body, forgotten_at is not None


def _in_own_transaction(db: Database, work: Callable[[Session], object]) -> Callable[[], object]:
    def run() -> object:
        with db.writer() as s, s.begin():
            return work(s)

    return run


def test_an_answer_stored_while_her_erasure_is_in_flight_waits_and_is_stored_forgotten(
    race_db: Database,
) -> None:
    member_id = _member(race_db)
    key = f"race-{next(_keys)}"

    _first_in_flight(
        race_db,
        lambda s: members.erase_member(s, member_id),
        _in_own_transaction(race_db, lambda s: _answer(s, key, member_id)),
    )

    assert _stored(race_db, key) == (None, True)


def test_an_erasure_meeting_an_answer_in_flight_waits_for_it_then_forgets_it(
    race_db: Database,
) -> None:
    member_id = _member(race_db)
    key = f"race-{next(_keys)}"

    _first_in_flight(
        race_db,
        lambda s: _answer(s, key, member_id),
        _in_own_transaction(race_db, lambda s: members.erase_member(s, member_id)),
    )

    assert _stored(race_db, key) == (None, True)


def test_two_answers_about_her_stored_at_once_by_holders_of_her_key_share_lock_both_commit(
    race_db: Database,
) -> None:
    """Two orders of hers committing together each hold a key-share lock on her row (their
    foreign key) when their answers are stored as hers: the check takes a share lock, which
    both get; two row locks asked on top of those would deadlock."""
    member_id = _member(race_db)
    keys = [f"race-{next(_keys)}" for _ in range(2)]
    both_hold_her = threading.Barrier(2, timeout=10)
    failed: list[Exception] = []

    def order_of_hers(key: str) -> None:
        try:
            with race_db.writer() as s, s.begin():
                s.execute(
                    text("SELECT id FROM members WHERE id = :id FOR KEY SHARE"), {"id": member_id}
                )
                both_hold_her.wait()
                _answer(s, key, member_id)
        except Exception as error:  # reported below, in the test's own thread
            failed.append(error)

    threads = [threading.Thread(target=order_of_hers, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failed == []
    assert [_stored(race_db, key)[1] for key in keys] == [False, False]
