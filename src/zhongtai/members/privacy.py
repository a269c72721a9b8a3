"""A member's rights over her data: a full export, and erasure that keeps the books whole."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, Table, delete, func, or_, select
from sqlalchemy.orm import Session

from zhongtai.core import idempotency
from zhongtai.core.audit import record_audit
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import NotFound
from zhongtai.core.outbox import record_event
from zhongtai.members.events import MemberErased
from zhongtai.members.hooks import ERASE_STEPS, EXPORT_SECTIONS, MEMBER_SUBJECT, member_subject
from zhongtai.members.identity import (
    get_member,
    identities_of,
    identity_value,
    lock_member,
    member_ids_of,
)
from zhongtai.members.models import (
    ConsentRecord,
    Member,
    MemberIdentity,
    MemberMerge,
    MemberStatus,
)
from zhongtai.members.pii import PiiCipher


def export_member(session: Session, cipher: PiiCipher, member_id: uuid.UUID) -> dict[str, Any]:
    """Everything held about her, as JSON-able data: profile, identities in clear, consent
    history, merges, and each other context's section (points, ...)."""
    member = get_member(session, member_id)
    ids = member_ids_of(session, member.id)
    consents = session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.member_id.in_(ids))
        .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
    )
    merges = session.scalars(
        select(MemberMerge)
        .where(or_(MemberMerge.survivor_id.in_(ids), MemberMerge.merged_id.in_(ids)))
        .order_by(MemberMerge.merged_at)
    )
    return {
        "member": {
            "id": str(member.id),
            "status": member.status.value,
            "name": member.name,
            "birthday": member.birthday.isoformat() if member.birthday else None,
            "preferred_store_id": _str(member.preferred_store_id),
            "preferences": member.preferences,
            "tags": member.tags,
            "registered_via": member.registered_via,
            "registered_store_id": _str(member.registered_store_id),
            "created_at": member.created_at.isoformat(),
            "erased_at": member.erased_at.isoformat() if member.erased_at else None,
            "merged_member_ids": [str(i) for i in ids[1:]],
        },
        "identities": [
            {
                "kind": i.kind.value,
                "value": identity_value(cipher, i),
                "linked_at": i.created_at.isoformat(),
            }
            for i in identities_of(session, member.id)
        ],
        "consents": [
            {
                "channel": c.channel.value,
                "granted": c.granted,
                "recorded_at": c.recorded_at.isoformat(),
                "source": c.source,
            }
            for c in consents
        ],
        "merges": [
            {
                "survivor_id": str(m.survivor_id),
                "merged_id": str(m.merged_id),
                "merged_at": m.merged_at.isoformat(),
            }
            for m in merges
        ],
        **{name: section(session, ids) for name, section in sorted(EXPORT_SECTIONS.items())},
    }


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def erase_member(session: Session, member_id: uuid.UUID) -> Member:
    """Forget the person, keep the pseudonym: identities deleted (the encrypted phone with
    them), profile wiped, the stored Idempotency-Key responses that concern her forgotten (a
    retry of one answers 410), and every other context's personal data of her forgotten (and
    what it kept for her alone let go of, as the stock her open checkout quotes held) by its
    registered erasure step (:func:`zhongtai.members.hooks.erase_step`), all in this
    transaction and under her lock. Her id, points ledger and sales stay, so every figure still
    adds up; nothing links them to her any more. Erasing an erased member changes nothing."""
    member = lock_member(session, member_id, allow_erased=True)
    if member.status is MemberStatus.ERASED:
        return member
    ids = member_ids_of(session, member.id)
    session.execute(delete(MemberIdentity).where(MemberIdentity.member_id.in_(ids)))
    for row in session.scalars(select(Member).where(Member.id.in_(ids))):
        _wipe(row)
    member.status = MemberStatus.ERASED
    member.erased_at = utcnow()
    session.flush()
    forgotten = {name: step(session, ids) for name, step in sorted(ERASE_STEPS.items())}
    forgotten["stored_replays"] = idempotency.forget_responses_about(
        session, [member_subject(i) for i in ids]
    )
    record_audit(
        session,
        "member.erased",
        "member",
        member.id,
        {"status": MemberStatus.ACTIVE.value},
        {
            "status": MemberStatus.ERASED.value,
            "merged_member_ids": ids[1:],
            "forgotten": forgotten,
        },
    )
    record_event(
        session,
        MemberErased(member_id=member.id, erased_at=member.erased_at),
        aggregate_type="member",
        aggregate_id=member.id,
    )
    return member


def _wipe(member: Member) -> None:
    member.name = None
    member.birthday = None
    member.preferred_store_id = None
    member.preferences = {}
    member.tags = []


@idempotency.erased_check(MEMBER_SUBJECT)
def _erased(session: Session, member_id: str) -> bool:
    """Whether she was erased, asked as a response concerning her is stored, under a share
    lock on her (surviving) row that her erasure's lock waits for (:func:`erase_member`): a
    response stored while an erasure runs waits for it to commit and is then stored forgotten;
    an erasure arriving while the response is stored waits for that transaction, then forgets
    the response with the rest.

    A share lock, not her row lock: two orders of hers committing at once each hold a key-share
    lock on her row (their foreign key), and two row locks asked on top would deadlock.
    A merged id's pointer row is never locked (as :func:`lock_member`).
    """
    asked = uuid.UUID(member_id)
    for _ in range(3):
        row = session.execute(_judged(asked)).one_or_none()
        if row is None:
            raise NotFound(f"No member {asked}.", member_id=str(asked))
        if row.merged_into_id is None:
            return bool(row.status is MemberStatus.ERASED)
        asked = row.merged_into_id  # merged while we waited: follow her
    return lock_member(session, asked, allow_erased=True).status is MemberStatus.ERASED


_MEMBERS: Table = Member.__table__  # type: ignore[assignment]


def _judged(member_id: uuid.UUID) -> Select[Any]:
    """The status and merge pointer of the survivor of ``member_id`` (herself if never
    merged), her row share-locked, in one statement: the pointer row is read in a subquery,
    which locks nothing (merges move pointers one hop, so the pointer names the survivor)."""
    person, pointer = _MEMBERS.alias("person"), _MEMBERS.alias("pointer")
    merged_into = (
        select(pointer.c.merged_into_id).where(pointer.c.id == member_id).scalar_subquery()
    )
    return (
        select(person.c.status, person.c.merged_into_id)
        .where(person.c.id == func.coalesce(merged_into, member_id))
        .with_for_update(read=True)
    )
