"""Finding a member by any of her identities, creating her on first sight, linking identities."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ScalarSelect, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.outbox import record_event
from zhongtai.members import rules
from zhongtai.members.errors import IdentityTaken, MemberErased
from zhongtai.members.events import MemberIdentityLinked, MemberRegistered
from zhongtai.members.models import IdentityKind, Member, MemberIdentity, MemberStatus
from zhongtai.members.pii import PiiCipher
from zhongtai.stores import service as stores

PHONE_PURPOSE = "phone"


@dataclass(frozen=True)
class IdentityKey:
    """An identity as stored: its lookup key, and for phones the encrypted number."""

    kind: IdentityKind
    lookup_key: str
    ciphertext: bytes | None


def identity_key(cipher: PiiCipher, kind: IdentityKind, value: str) -> IdentityKey:
    """Normalise and protect an identity; 422 naming ``value`` when it has the wrong shape."""
    try:
        normal = rules.normalize_identity(kind, value)
    except rules.IdentityValueInvalid as bad:
        raise InvalidInput.field("value", str(bad)) from None
    if kind is IdentityKind.PHONE:
        return IdentityKey(
            kind,
            cipher.lookup_key(PHONE_PURPOSE, normal),
            cipher.encrypt(normal, purpose=PHONE_PURPOSE),
        )
    return IdentityKey(kind, normal, None)


def identity_value(cipher: PiiCipher, identity: MemberIdentity) -> str:
    """The identity in clear (phones decrypted)."""
    if identity.ciphertext is not None:
        return cipher.decrypt(identity.ciphertext, purpose=PHONE_PURPOSE)
    return identity.lookup_key


def known_store(session: Session, store_id: uuid.UUID | None, field: str) -> None:
    """422 naming ``field`` when a store id given in a request is not a store of the chain."""
    if store_id is None:
        return
    try:
        stores.get_location(session, store_id)
    except NotFound:
        raise InvalidInput.field(field, "is not a known store") from None


def _owner(session: Session, key: IdentityKey) -> uuid.UUID | None:
    return session.scalar(
        select(MemberIdentity.member_id).where(
            MemberIdentity.kind == key.kind, MemberIdentity.lookup_key == key.lookup_key
        )
    )


def find_member_id(session: Session, cipher: PiiCipher, kind: IdentityKind, value: str) -> Any:
    """The member an identity leads to, or None."""
    return _owner(session, identity_key(cipher, kind, value))


def find_or_create_member(
    session: Session,
    cipher: PiiCipher,
    kind: IdentityKind,
    value: str,
    *,
    via: str,
    store_id: uuid.UUID | None = None,
    name: str | None = None,
    birthday: date | None = None,
) -> tuple[Member, bool]:
    """The member this identity leads to, created on first sight; ``(member, created)``.

    One race-safe step: the unique (kind, lookup_key) decides. Two touchpoints meeting the same
    new phone at once both try to insert; the database lets one win, the other's savepoint
    rolls back and it answers the winner's member. Name and birthday apply to a new member only.
    An erased member is never answered: her identities went with her erasure.
    """
    key = identity_key(cipher, kind, value)
    known_store(session, store_id, "store_id")
    found = _owner(session, key)
    if found is not None:
        member = get_member(session, found)
        if member.status is not MemberStatus.ERASED:
            return member, False
        # Her erasure committed between the two reads: it took this identity with it, so the
        # touchpoint meets someone unknown, as it would a moment later. Never the pseudonym.
    member = Member(
        name=name,
        birthday=birthday,
        preferences={},
        tags=[],
        registered_via=via,
        registered_store_id=store_id,
    )
    try:
        with session.begin_nested():
            session.add(member)
            session.flush()
            session.add(
                MemberIdentity(
                    member_id=member.id,
                    kind=key.kind,
                    lookup_key=key.lookup_key,
                    ciphertext=key.ciphertext,
                )
            )
            session.flush()
    except IntegrityError:
        winner = _owner(session, key)
        if winner is None:
            raise
        return get_member(session, winner), False
    record_event(
        session,
        MemberRegistered(
            member_id=member.id, identity_kind=kind.value, registered_via=via, store_id=store_id
        ),
        aggregate_type="member",
        aggregate_id=member.id,
        store_id=store_id,
    )
    return member, True


def link_identity(
    session: Session, cipher: PiiCipher, member_id: uuid.UUID, kind: IdentityKind, value: str
) -> Member:
    """Let one more identity lead to the member; linking one she already has changes nothing.

    An identity of another member answers 409 ``identity-taken`` (merge the two instead).
    """
    member = lock_member(session, member_id)
    key = identity_key(cipher, kind, value)
    try:
        with session.begin_nested():
            session.add(
                MemberIdentity(
                    member_id=member.id,
                    kind=key.kind,
                    lookup_key=key.lookup_key,
                    ciphertext=key.ciphertext,
                )
            )
            session.flush()
    except IntegrityError:
        owner = _owner(session, key)
        if owner is None:
            raise
        if owner != member.id:
            raise IdentityTaken(kind.value, owner) from None
        return member
    record_event(
        session,
        MemberIdentityLinked(member_id=member.id, identity_kind=kind.value),
        aggregate_type="member",
        aggregate_id=member.id,
    )
    return member


def get_member(session: Session, member_id: uuid.UUID, *, key_share: bool = False) -> Member:
    """The member by id; a merged member's id answers her survivor (404 when unknown).

    ``key_share``: her row (and a merged id's) is read as it stands and share-locked for its
    key until the transaction ends, as a row referring to her would lock it anyway. A sale to
    her reads her so before it holds any stock: her erasure or merge, which lock her row and
    then what is kept for her, then either waits for the sale (and finds what it made) or goes
    first (and the sale reads her as erased or merged), and never waits in the opposite order.
    It conflicts with nothing else (points and profile changes lock her row for no key update).
    """
    if key_share:
        return _key_shared(session, member_id)
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound(f"No member {member_id}.", member_id=str(member_id))
    if member.merged_into_id is not None:
        survivor = session.get(Member, member.merged_into_id)
        assert survivor is not None  # foreign key
        return survivor
    return member


def _key_shared(session: Session, member_id: uuid.UUID) -> Member:
    return _locked_following_merges(session, member_id, member_id, key_share=True)


def lock_member(session: Session, member_id: uuid.UUID, *, allow_erased: bool = False) -> Member:
    """The (surviving) member's row, locked for the rest of the transaction.

    Merges lock the same rows, so a change racing a merge lands either before it (and moves
    with it) or after it (on the survivor).
    """
    # The usual case, a member who was never merged, in one statement: her row locked only if
    # it is nobody's pointer (a merged row is never locked here: a merge moving pointers to a
    # new survivor must not wait for us while we wait for the survivor).
    member = session.scalars(
        select(Member)
        .where(Member.id == member_id, Member.merged_into_id.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none() or _lock_survivor(session, member_id)
    if member.status is MemberStatus.ERASED and not allow_erased:
        raise MemberErased(member.id)
    return member


def _lock_survivor(session: Session, member_id: uuid.UUID) -> Member:
    """Follow a merged id to her survivor and lock that row (again if a merge moved her while
    we waited for the lock). The merged row itself is read, not locked."""
    survivor = get_member(session, member_id).id
    return _locked_following_merges(session, survivor, member_id, key_share=False)


def _locked_following_merges(
    session: Session, start: uuid.UUID, member_id: uuid.UUID, *, key_share: bool
) -> Member:
    """Lock the row ``start`` (``FOR KEY SHARE`` or ``FOR UPDATE``) and, while the row read is
    a pointer (merged, perhaps while we waited), the row it points to; three hops at most.
    404 naming ``member_id`` when a row is gone or the pointers keep moving."""
    target = start
    for _ in range(3):
        member = session.scalars(
            select(Member)
            .where(Member.id == target)
            .with_for_update(read=key_share, key_share=key_share)
            .execution_options(populate_existing=True)
        ).one_or_none()
        if member is None:
            break
        if member.merged_into_id is None:
            return member
        target = member.merged_into_id
    raise NotFound(f"No member {member_id}.", member_id=str(member_id))


def _survivor_of(member_id: uuid.UUID) -> ScalarSelect[uuid.UUID]:
    """The survivor of a member (herself if never merged), as a scalar subquery: pointers are
    one hop, so a merged id's survivor is her ``merged_into_id``."""
    return (
        select(func.coalesce(Member.merged_into_id, Member.id))
        .where(Member.id == member_id)
        .scalar_subquery()
    )


def member_ids_select(member_id: uuid.UUID) -> Select[uuid.UUID]:
    """As :func:`member_ids_of`, as a subquery to fold into the statement that needs the ids
    (``... WHERE member_id IN (<this>)``) instead of a round trip of its own."""
    survivor = _survivor_of(member_id)
    return select(Member.id).where(or_(Member.id == survivor, Member.merged_into_id == survivor))


def member_ids_of(session: Session, member_id: uuid.UUID) -> list[uuid.UUID]:
    """The person's ids: her survivor first, then every member merged into her (pointers are
    always one hop). A merged member's id answers the same list as her survivor's, so books
    read under an id a till or an app kept from before the merge are still the whole person's.
    An id that is no member's answers itself alone."""
    survivor = _survivor_of(member_id)
    rows = session.execute(
        select(Member.id, Member.merged_into_id)
        .where(or_(Member.id == survivor, Member.merged_into_id == survivor))
        .order_by(Member.id)
    ).all()
    first = [row.id for row in rows if row.merged_into_id is None]
    if not first:
        return [member_id]
    return [first[0], *(row.id for row in rows if row.merged_into_id is not None)]


def identities_of(session: Session, member_id: uuid.UUID) -> list[MemberIdentity]:
    return list(
        session.scalars(
            select(MemberIdentity)
            .where(MemberIdentity.member_id == member_id)
            .order_by(MemberIdentity.kind, MemberIdentity.created_at, MemberIdentity.id)
        )
    )
