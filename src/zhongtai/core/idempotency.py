"""Idempotency-Key records: the first response to a key is stored and replayed to every retry.

The record is inserted in the *same* transaction as the request's effect and its response is
written just before that transaction commits. So a key is either unknown (the first attempt
failed and changed nothing: a retry runs again) or bound to exactly one committed response.
On PostgreSQL a concurrent duplicate's INSERT waits on the unique index until the first
transaction ends, then finds the stored response: concurrent duplicates produce one effect.

A route whose every effect lies in its transaction may bind the key *at commit* instead
(:func:`record_first_response`): one INSERT of the record with its response just before the
commit, rather than an INSERT first and an UPDATE at the end. A duplicate then does the work
too, but its INSERT meets the first's record (waiting for it on PostgreSQL); it rolls back
everything it did and replays the first response. Still one effect, one statement fewer.

A response holding a person's data is stored with its *subject* (``member:<id>``, see
:func:`subject_of`), so that her erasure forgets it (:func:`forget_responses_about`): the key
stays bound, so the request is never run twice, but its response, status and fingerprint are
gone, and a retry answers 410 ``idempotency-key-forgotten``. A response stored after its
subject's erasure committed is stored forgotten (:func:`erased_check`).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, ClassVar, NoReturn

from pydantic_core import PydanticCustomError
from sqlalchemy import (
    Index,
    Insert,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin
from zhongtai.core.errors import DomainError, IdempotencyKeyInFlight, IdempotencyKeyReused
from zhongtai.core.ids import new_id

HEADER = "Idempotency-Key"
_KEY_SHAPE = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyRecord(IdMixin, Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        # Only the few responses that concern someone: small whatever the traffic.
        Index(
            "ix_idempotency_records_subject",
            "subject",
            sqlite_where=text("subject IS NOT NULL"),
            postgresql_where=text("subject IS NOT NULL"),
        ),
    )

    scope: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: Whom the response concerns (``member:<id>``): her erasure forgets it. None: nobody.
    subject: Mapped[str | None] = mapped_column(String(80))
    #: When the response was forgotten with its subject: the key stays bound, nothing else.
    forgotten_at: Mapped[datetime | None]


_RECORDS: Table = IdempotencyRecord.__table__  # type: ignore[assignment]


class IdempotencyKeyForgotten(DomainError):
    """The key's response concerned someone since erased, and was forgotten with her."""

    slug: ClassVar[str] = "idempotency-key-forgotten"
    status: ClassVar[int] = 410
    title: ClassVar[str] = "The response to this Idempotency-Key was forgotten"


#: Per kind of subject (``member``), how to tell whether one was erased: ``(session, subject
#: id) -> bool``, asked when a response concerning one is stored, under a lock her erasure
#: takes too (so the response is stored before the erasure, which then forgets it, or after
#: it, and then stored forgotten). Registered by the context owning the subjects.
ErasedCheck = Callable[[Session, str], bool]
ERASED_CHECKS: dict[str, ErasedCheck] = {}


def erased_check(kind: str) -> Callable[[ErasedCheck], ErasedCheck]:
    def register(check: ErasedCheck) -> ErasedCheck:
        ERASED_CHECKS[kind] = check
        return check

    return register


def subject_of(kind: str, subject_id: object) -> str:
    """The subject column's value for one subject: ``member:<id>``."""
    return f"{kind}:{subject_id}"


def _erased(session: Session, subject: str) -> bool:
    kind, _, subject_id = subject.partition(":")
    check = ERASED_CHECKS.get(kind)
    return check is not None and check(session, subject_id)


def _forgotten() -> dict[str, Any]:
    """What a forgotten record keeps: its scope, key and subject (the key stays bound). The
    fingerprint goes too: a hash of the request, her phone in it, can be brute-forced."""
    return {
        "fingerprint": "",
        "status_code": None,
        "content_type": None,
        "body": None,
        "forgotten_at": utcnow(),
    }


def _response(
    session: Session, status_code: int, content_type: str, body: bytes, subject: str | None
) -> dict[str, Any]:
    """The columns storing a response (forgotten at once if its subject was erased)."""
    if subject is None:
        return {"status_code": status_code, "content_type": content_type, "body": body}
    if _erased(session, subject):
        return {**_forgotten(), "subject": subject}
    return {
        "status_code": status_code,
        "content_type": content_type,
        "body": body,
        "subject": subject,
    }


def forget_responses_about(session: Session, subjects: Sequence[str]) -> int:
    """Forget the stored responses concerning any of ``subjects``, in the caller's
    transaction (an erasure's): how many. Their keys stay bound, each answering 410
    ``idempotency-key-forgotten`` from now on."""
    if not subjects:
        return 0
    result = session.execute(
        update(_RECORDS)
        .where(_RECORDS.c.subject.in_(list(subjects)), _RECORDS.c.forgotten_at.is_(None))
        .values(**_forgotten())
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    content_type: str
    body: bytes


class ReplayStoredResponse(Exception):
    """Raised by the guard to short-circuit the endpoint and answer with the stored response."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("replay")
        self.stored = stored


KEY_RULE = "must be 1 to 255 visible ASCII characters (a UUID is a good choice)"


def key_shape(key: str | None) -> str | None:
    """The header's own validator: a malformed key is a validation error of the request's
    parameters, which FastAPI answers (422) only once every dependency ran, so the caller's
    authentication answers first (401 before 422, as for a body that does not validate)."""
    if key is not None and not _KEY_SHAPE.match(key):
        raise PydanticCustomError("idempotency_key", KEY_RULE)
    return key


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class ClaimedKey:
    """A key bound to the request in flight: its record's id, for the response to be stored."""

    id: uuid.UUID


def claim(session: Session, scope: str, key: str, print_: str) -> ClaimedKey:
    """Bind the key to this request, or raise to replay / refuse.

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: a new key comes back claimed; a known
    one returns nothing, and is then replayed or refused. (On PostgreSQL an INSERT meeting a
    duplicate still in flight waits for that transaction to end, so concurrent duplicates queue
    behind the first.) Raises ReplayStoredResponse if the key already has a response for the
    same request, IdempotencyKeyReused if it was used for a different request.
    """
    record_id = _insert_unless_bound(session, {"scope": scope, "key": key, "fingerprint": print_})
    if record_id is None:
        _refuse_or_replay(session, scope, key, print_)
    return ClaimedKey(record_id)


@dataclass(frozen=True)
class PendingKey:
    """A key a request will bind when it commits (routes that bind at commit)."""

    scope: str
    key: str
    fingerprint: str


def record_first_response(
    session: Session,
    pending: PendingKey,
    status_code: int,
    content_type: str,
    body: bytes,
    subject: str | None = None,
) -> bool:
    """Bind the key to this response in the request's transaction, just before it commits.

    False when the key is already bound (on PostgreSQL, after waiting for a duplicate in
    flight to commit): the caller rolls its transaction back and calls :func:`replay_bound`.
    """
    record = {
        "scope": pending.scope,
        "key": pending.key,
        "fingerprint": pending.fingerprint,
        **_response(session, status_code, content_type, body, subject),
    }
    return _insert_unless_bound(session, record) is not None


def _insert_unless_bound(session: Session, record: dict[str, object]) -> uuid.UUID | None:
    """INSERT the key's record unless (scope, key) has one: its new id, or None.

    On the table, not the mapped class, on the session's connection: a plain statement, built
    once per database kind, skips the ORM's bulk and session machinery.
    """
    connection = session.connection()
    statement = _insert_statement(connection.dialect.name)
    row = {**record, "id": new_id(), "created_at": utcnow()}
    record_id: uuid.UUID | None = connection.execute(statement, row).scalar()
    return record_id


@lru_cache(maxsize=2)
def _insert_statement(dialect_name: str) -> Insert:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement: Insert = (
        dialect.insert(_RECORDS)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(_RECORDS.c.id)
    )
    return statement


def replay_bound(session: Session, pending: PendingKey) -> None:
    """After a request's own transaction rolled back: answer with the key's bound response.

    Raises ReplayStoredResponse (same request), IdempotencyKeyReused (another request) or
    IdempotencyKeyInFlight; returns only if the key is free, having claimed it in ``session``,
    which the caller rolls back (the request's own answer stands, and a retry runs again).
    """
    claim(session, pending.scope, pending.key, pending.fingerprint)


def _refuse_or_replay(session: Session, scope: str, key: str, print_: str) -> NoReturn:
    existing = session.scalars(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    ).one()
    if existing.forgotten_at is not None:
        raise IdempotencyKeyForgotten(
            f"The response to Idempotency-Key {key!r} concerned someone whose data has since "
            "been erased, and was forgotten with it; the request it answered is not run again. "
            "Send a new request under a new key."
        )
    if existing.fingerprint != print_:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was already used for a different request "
            "(method, path or body differ). Use a new key for a new request."
        )
    if existing.status_code is None or existing.body is None:
        raise IdempotencyKeyInFlight(
            f"A request with Idempotency-Key {key!r} is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )
    raise ReplayStoredResponse(
        StoredResponse(
            existing.status_code, existing.content_type or "application/json", existing.body
        )
    )


def record_response(
    session: Session,
    claimed: ClaimedKey,
    status_code: int,
    content_type: str,
    body: bytes,
    subject: str | None = None,
) -> None:
    """Store the response of the request that claimed the key, in its transaction, with whom
    it concerns (``subject``), if anyone."""
    session.execute(
        update(_RECORDS)
        .where(_RECORDS.c.id == claimed.id)
        .values(**_response(session, status_code, content_type, body, subject))
    )


def redact_fields(body: bytes, fields: tuple[str, ...]) -> bytes:
    document = json.loads(body)
    if isinstance(document, dict):
        for field in fields:
            if field in document:
                document[field] = None
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def purge_expired(session: Session, ttl: timedelta) -> int:
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - ttl)
    )
    return int(getattr(result, "rowcount", 0) or 0)
