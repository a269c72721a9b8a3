"""A member's profile and marketing consent, and the view of her each caller may see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.outbox import record_event
from zhongtai.members import rules
from zhongtai.members.events import ConsentChanged
from zhongtai.members.identity import (
    get_member,
    identities_of,
    identity_value,
    known_store,
    lock_member,
)
from zhongtai.members.models import ConsentChannel, ConsentRecord, IdentityKind, Member
from zhongtai.members.pii import PiiCipher

PROFILE_FIELDS = frozenset({"name", "birthday", "preferred_store_id", "preferences", "tags"})


@dataclass(frozen=True)
class ShownIdentity:
    kind: IdentityKind
    value: str
    masked: bool


@dataclass(frozen=True)
class Consent:
    channel: ConsentChannel
    granted: bool
    recorded_at: datetime | None
    source: str | None


@dataclass(frozen=True)
class MemberView:
    member: Member
    identities: list[ShownIdentity]
    consents: list[Consent]


def update_profile(session: Session, member_id: uuid.UUID, **changes: Any) -> Member:
    """Change name, birthday, preferred store, sizes/preferences or tags (given fields only)."""
    unknown = set(changes) - PROFILE_FIELDS
    if unknown:
        raise TypeError(f"not profile fields: {sorted(unknown)}")
    if "preferred_store_id" in changes:
        known_store(session, changes["preferred_store_id"], "preferred_store_id")
    member = lock_member(session, member_id)
    if "tags" in changes and changes["tags"] is not None:
        changes["tags"] = rules.normalized_tags(changes["tags"])
    for field, value in changes.items():
        if field in {"preferences", "tags"} and value is None:
            value = {} if field == "preferences" else []
        setattr(member, field, value)
    session.flush()
    return member


def consents_of(session: Session, member_id: uuid.UUID) -> list[Consent]:
    """Her current choice per channel: the latest record, or not granted when none exists."""
    latest: dict[ConsentChannel, ConsentRecord] = {}
    rows = session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.member_id == member_id)
        .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
    )
    for row in rows:
        latest[row.channel] = row
    out = []
    for channel in ConsentChannel:
        found = latest.get(channel)
        out.append(
            Consent(channel, found.granted, found.recorded_at, found.source)
            if found
            else Consent(channel, False, None, None)
        )
    return out


def set_consent(
    session: Session,
    member_id: uuid.UUID,
    channel: ConsentChannel,
    *,
    granted: bool,
    source: str,
    at: datetime | None = None,
) -> Consent:
    """Record that she gave or withdrew consent for a channel; repeating her choice is a no-op."""
    member = lock_member(session, member_id)
    current = next(c for c in consents_of(session, member.id) if c.channel is channel)
    if current.recorded_at is not None and current.granted == granted:
        return current
    record = ConsentRecord(
        member_id=member.id,
        channel=channel,
        granted=granted,
        recorded_at=at or utcnow(),
        source=source,
        actor=context.actor.get(),
    )
    session.add(record)
    session.flush()
    record_event(
        session,
        ConsentChanged(
            member_id=member.id,
            channel=channel.value,
            granted=granted,
            source=source,
            recorded_at=record.recorded_at,
        ),
        aggregate_type="member",
        aggregate_id=member.id,
    )
    return Consent(channel, granted, record.recorded_at, source)


def describe_member(
    session: Session, cipher: PiiCipher, member_id: uuid.UUID, *, may_see_pii: bool
) -> MemberView:
    """The member with her identities (masked unless ``may_see_pii``) and current consents."""
    member = get_member(session, member_id)
    shown = [
        ShownIdentity(
            i.kind,
            rules.shown_identity(i.kind, identity_value(cipher, i), may_see_pii=may_see_pii),
            masked=not may_see_pii,
        )
        for i in identities_of(session, member.id)
    ]
    return MemberView(member, shown, consents_of(session, member.id))
