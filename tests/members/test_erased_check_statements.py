"""Whether a member was erased, asked each time an Idempotency-Key answer concerning her is
stored: one statement, under her id or an id merged into her, her surviving row share-locked."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.races import race_database
from tests.statements import statements_on
from zhongtai.core.db import Database
from zhongtai.core.errors import NotFound
from zhongtai.core.idempotency import ERASED_CHECKS
from zhongtai.core.settings import Settings
from zhongtai.members import service
from zhongtai.members.hooks import MEMBER_SUBJECT
from zhongtai.members.models import IdentityKind
from zhongtai.members.pii import cipher_for

erased_check = ERASED_CHECKS[MEMBER_SUBJECT]
CIPHER = cipher_for(Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef"))
_phones = itertools.count(13400000001)


@pytest.mark.parametrize("erased", [False, True], ids=["active", "erased"])
@pytest.mark.parametrize("asked_as", ["her own id", "an id merged into her"])
def test_whether_she_was_erased_is_judged_in_one_statement(
    session: Session, connection: Connection, make_member: MakeMember, erased: bool, asked_as: str
) -> None:
    member = make_member()
    asked = member.id
    if asked_as == "an id merged into her":
        duplicate = make_member()
        service.merge_members(session, member.id, duplicate.id)
        asked = duplicate.id
    if erased:
        service.erase_member(session, member.id)
    session.flush()
    session.expunge_all()  # nothing of her in the session: each fact comes from the database

    with statements_on(connection, session) as sent:
        answer = erased_check(session, str(asked))

    assert answer is erased
    assert len(sent) == 1, sent
    if connection.dialect.name == "postgresql":
        assert sent[0].rstrip().endswith("FOR SHARE"), "her surviving row, share-locked"


def test_an_id_of_nobody_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        erased_check(session, str(uuid.uuid4()))


@pytest.fixture(scope="module")
def race_db() -> Iterator[Database]:
    with race_database("zt_erased_check", pool_size=3) as database:
        yield database


#: Another transaction's lock on her row, given up at once rather than waited for.
LOCKS = {
    "UPDATE": text("SELECT id FROM members WHERE id = :id FOR UPDATE NOWAIT"),
    "SHARE": text("SELECT id FROM members WHERE id = :id FOR SHARE NOWAIT"),
}


def _lockable(db: Database, member_id: uuid.UUID, mode: str) -> bool:
    """Whether another transaction could lock her row in ``mode`` right now."""
    with db.writer() as s, s.begin():
        try:
            s.execute(LOCKS[mode], {"id": member_id})
        except OperationalError as refused:
            assert "could not obtain lock" in str(refused)
            return False
        return True


@pytest.mark.postgres_only
def test_the_survivors_row_is_share_locked_and_the_merged_ids_row_is_not_locked(
    race_db: Database,
) -> None:
    with race_db.writer() as s, s.begin():
        survivor, _ = service.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, str(next(_phones)), via="app"
        )
        merged, _ = service.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, str(next(_phones)), via="app"
        )
        service.merge_members(s, survivor.id, merged.id)
        ids = (survivor.id, merged.id)

    with race_db.writer() as s, s.begin():
        assert erased_check(s, str(ids[1])) is False

        assert not _lockable(race_db, ids[0], "UPDATE"), "her erasure's row lock waits"
        assert _lockable(race_db, ids[0], "SHARE"), "another answer's share lock does not"
        assert _lockable(race_db, ids[1], "UPDATE"), "the pointer row is never locked"
