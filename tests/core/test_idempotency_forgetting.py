"""A stored Idempotency-Key response that concerns someone can be forgotten with her: the key
stays bound (the request never runs twice), but its response, status and fingerprint go, and a
retry answers 410 idempotency-key-forgotten."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core import idempotency
from zhongtai.core.errors import IdempotencyKeyReused
from zhongtai.core.idempotency import (
    IdempotencyKeyForgotten,
    IdempotencyRecord,
    PendingKey,
    ReplayStoredResponse,
    forget_responses_about,
    subject_of,
)

HER = subject_of("person", "a")
SOMEONE_ELSE = subject_of("person", "b")


def _stored(session: Session, key: str, subject: str | None, body: bytes) -> None:
    claimed = idempotency.claim(session, "staff:1", key, "f" * 64)
    idempotency.record_response(session, claimed, 200, "application/json", body, subject)


def _record(session: Session, key: str) -> IdempotencyRecord:
    return session.scalars(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    ).one()


def test_forgetting_a_subject_blanks_her_responses_only_and_keeps_their_keys_bound(
    session: Session,
) -> None:
    _stored(session, "hers-1", HER, b'{"name":"Li"}')
    _stored(session, "hers-2", HER, b'{"name":"Li Na"}')
    _stored(session, "other", SOMEONE_ELSE, b'{"name":"Wang"}')
    _stored(session, "nobody", None, b'{"id":1}')

    assert forget_responses_about(session, [HER]) == 2
    assert forget_responses_about(session, [HER]) == 0  # once

    for key in ("hers-1", "hers-2"):
        forgotten = _record(session, key)
        assert forgotten.forgotten_at is not None
        assert (forgotten.body, forgotten.status_code, forgotten.content_type) == (None,) * 3
        assert forgotten.fingerprint == ""  # a hash of her request can be brute-forced
    assert _record(session, "other").body == b'{"name":"Wang"}'
    assert _record(session, "nobody").body == b'{"id":1}'


def test_a_retry_of_a_forgotten_key_answers_410_whatever_it_sends_and_others_still_replay(
    session: Session,
) -> None:
    _stored(session, "hers", HER, b'{"name":"Li"}')
    _stored(session, "other", SOMEONE_ELSE, b'{"name":"Wang"}')
    forget_responses_about(session, [HER])

    with pytest.raises(IdempotencyKeyForgotten) as same:
        idempotency.claim(session, "staff:1", "hers", "f" * 64)
    with pytest.raises(IdempotencyKeyForgotten):
        idempotency.claim(session, "staff:1", "hers", "e" * 64)  # not "reused": unknowable
    with pytest.raises(ReplayStoredResponse) as replayed:
        idempotency.claim(session, "staff:1", "other", "f" * 64)
    with pytest.raises(IdempotencyKeyReused):
        idempotency.claim(session, "staff:1", "other", "e" * 64)

    assert same.value.status == 410
    assert same.value.to_problem()["type"].endswith("/idempotency-key-forgotten")
    assert replayed.value.stored.body == b'{"name":"Wang"}'


def test_a_key_bound_at_commit_is_forgotten_alike(session: Session) -> None:
    pending = PendingKey("staff:1", "at-commit", "f" * 64)
    assert idempotency.record_first_response(
        session, pending, 201, "application/json", b'{"name":"Li"}', HER
    )

    forget_responses_about(session, [HER])

    with pytest.raises(IdempotencyKeyForgotten):
        idempotency.replay_bound(session, pending)


def test_a_response_stored_after_its_subject_was_erased_is_stored_forgotten(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    erased = {"a"}
    asked: list[str] = []

    def person_erased(_: Session, person_id: str) -> bool:
        asked.append(person_id)
        return person_id in erased

    monkeypatch.setitem(idempotency.ERASED_CHECKS, "person", person_erased)
    _stored(session, "hers-late", HER, b'{"name":"Li"}')
    _stored(session, "other", SOMEONE_ELSE, b'{"name":"Wang"}')
    _stored(session, "nobody", None, b'{"id":1}')
    pending = PendingKey("staff:1", "hers-late-at-commit", "f" * 64)
    idempotency.record_first_response(session, pending, 201, "application/json", b"{}", HER)

    assert asked == ["a", "b", "a"]  # only for responses concerning someone
    for key in ("hers-late", "hers-late-at-commit"):
        late = _record(session, key)
        assert (late.body, late.forgotten_at is not None, late.subject) == (None, True, HER)
    assert _record(session, "other").body == b'{"name":"Wang"}'
