"""Merging two members who turn out to be one person: everything moves to the survivor."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.audit import record_audit
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.outbox import record_event
from zhongtai.members import rules
from zhongtai.members.events import MemberMerged
from zhongtai.members.hooks import MERGE_STEPS
from zhongtai.members.models import (
    ConsentRecord,
    Member,
    MemberIdentity,
    MemberMerge,
    MemberStatus,
)


def _profile(member: Member) -> rules.Profile:
    return rules.Profile(
        member.name, member.birthday, member.preferred_store_id, member.preferences, member.tags
    )


def merge_members(session: Session, survivor_id: uuid.UUID, merged_id: uuid.UUID) -> MemberMerge:
    """Move the merged member's identities, consents, points (and every registered step's data)
    to the survivor; the merged member stays as a pointer, so her id still finds the person.

    Idempotent: merging the same pair again answers the first merge's trace. Both rows are
    locked in id order, so racing merges (even of the same pair in opposite directions) queue.
    """
    if survivor_id == merged_id:
        raise InvalidInput.field("merged_member_id", "must differ from the surviving member")
    rows = {
        m.id: m
        for m in session.scalars(
            select(Member)
            .where(Member.id.in_([survivor_id, merged_id]))
            .order_by(Member.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    for wanted in (survivor_id, merged_id):
        if wanted not in rows:
            raise NotFound(f"No member {wanted}.", member_id=str(wanted))
    survivor, merged = rows[survivor_id], rows[merged_id]
    if merged.merged_into_id == survivor.id:
        trace = session.scalars(select(MemberMerge).where(MemberMerge.merged_id == merged.id)).one()
        return trace
    for member in (survivor, merged):
        if member.status is MemberStatus.MERGED:
            raise Conflict(
                f"Member {member.id} was already merged into {member.merged_into_id}; "
                "merge with that member instead.",
                member_id=str(member.id),
                merged_into_id=str(member.merged_into_id),
            )
        if member.status is MemberStatus.ERASED:
            raise Conflict(f"Member {member.id} was erased.", member_id=str(member.id))

    identity_ids = list(
        session.scalars(select(MemberIdentity.id).where(MemberIdentity.member_id == merged.id))
    )
    session.execute(
        update(MemberIdentity)
        .where(MemberIdentity.member_id == merged.id)
        .values(member_id=survivor.id)
    )
    consents = session.execute(
        update(ConsentRecord)
        .where(ConsentRecord.member_id == merged.id)
        .values(member_id=survivor.id)
    ).rowcount  # type: ignore[attr-defined]
    combined = rules.merged_profile(_profile(survivor), _profile(merged))
    survivor.name, survivor.birthday = combined.name, combined.birthday
    survivor.preferred_store_id = combined.preferred_store_id
    survivor.preferences, survivor.tags = combined.preferences, combined.tags

    moved: dict[str, object] = {
        "identities": [str(i) for i in identity_ids],
        "consents": consents,
    }
    for name, step in sorted(MERGE_STEPS.items()):
        moved[name] = step(session, merged.id, survivor.id)

    # Members merged into the merged one now point straight at the survivor: one hop, always.
    session.execute(
        update(Member).where(Member.merged_into_id == merged.id).values(merged_into_id=survivor.id)
    )
    merged.status, merged.merged_into_id = MemberStatus.MERGED, survivor.id
    merged.name, merged.birthday, merged.preferred_store_id = None, None, None
    merged.preferences, merged.tags = {}, []
    trace = MemberMerge(
        survivor_id=survivor.id,
        merged_id=merged.id,
        actor=context.actor.get(),
        request_id=context.request_id.get(),
        moved=moved,
    )
    session.add(trace)
    session.flush()
    record_audit(
        session,
        "member.merged",
        "member",
        merged.id,
        {"status": MemberStatus.ACTIVE.value},
        {
            "status": MemberStatus.MERGED.value,
            "survivor_id": survivor.id,
            "merge_id": trace.id,
            "moved": moved,
        },
    )
    record_event(
        session,
        MemberMerged(
            merge_id=trace.id,
            survivor_id=survivor.id,
            merged_id=merged.id,
            identities_moved=len(identity_ids),
        ),
        aggregate_type="member",
        aggregate_id=survivor.id,
    )
    return trace
