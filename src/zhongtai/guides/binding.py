"""Member ↔ guide binding: a guide's touch (a till sale naming her, a share link opened, a WeCom
contact, a manager's reassignment, a handover) binds or rebinds the member by the chain's rule.

Every change locks the member's row (as merges do), so two touches racing for one member are
decided one after the other, and the partial unique index keeps at most one current guide.

A touch first share-locks the touching guide's row and a guide's leaving locks it exclusively
(see :func:`lock_guides`), so a touch racing her leaving either lands before it (and its
customer is handed over with the others) or after it (and binds nobody). The lock order is
the same everywhere: guides before members, several guides in the order of their ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.outbox import record_event
from zhongtai.guides.binding_rules import (
    BindingDecision,
    BindingSource,
    BindingVerdict,
    CurrentBinding,
    Touch,
    decide_binding,
)
from zhongtai.guides.events import GuideCustomerBound, GuideCustomerUnbound
from zhongtai.guides.models import Guide, GuideBinding, GuideStatus
from zhongtai.guides.program import program_terms
from zhongtai.members.hooks import merge_step
from zhongtai.members.identity import lock_member
from zhongtai.members.models import Member


@dataclass(frozen=True)
class BindingOutcome:
    member_id: uuid.UUID
    decision: BindingDecision
    #: The member's guide after the touch (None: still unbound).
    guide_id: uuid.UUID | None
    binding_id: uuid.UUID | None


def current_binding(session: Session, member_id: uuid.UUID) -> GuideBinding | None:
    return session.scalar(
        select(GuideBinding).where(
            GuideBinding.member_id == member_id, GuideBinding.ended_at.is_(None)
        )
    )


def binding_at(session: Session, member_id: uuid.UUID, at: datetime) -> GuideBinding | None:
    """The member's binding at a moment: made by then and not yet ended then."""
    return session.scalar(
        select(GuideBinding)
        .where(
            GuideBinding.member_id == member_id,
            GuideBinding.bound_at <= at,
            or_(GuideBinding.ended_at.is_(None), GuideBinding.ended_at > at),
        )
        .order_by(GuideBinding.bound_at.desc())
        .limit(1)
    )


def _end(binding: GuideBinding, at: datetime, reason: str) -> None:
    binding.ended_at = max(at, binding.bound_at)
    binding.end_reason = reason


def _bind(
    session: Session,
    member_id: uuid.UUID,
    touch: Touch,
    decision: BindingDecision,
    previous: GuideBinding | None,
    source_ref: str | None,
    store_id: uuid.UUID,
) -> GuideBinding:
    assert decision.protected_until is not None  # BIND and REBIND carry it
    if previous is not None:
        _end(
            previous,
            touch.at,
            "handover"
            if touch.source is BindingSource.HANDOVER
            else "reassigned"
            if touch.source is BindingSource.MANAGER
            else "rebound",
        )
        session.flush()  # the old row stops being current before the new one is
    binding = GuideBinding(
        member_id=member_id,
        guide_id=touch.guide_id,
        source=touch.source,
        source_ref=source_ref,
        bound_at=touch.at,
        protected_until=decision.protected_until,
        actor=context.actor.get(),
    )
    session.add(binding)
    session.flush()
    record_event(
        session,
        GuideCustomerBound(
            member_id=member_id,
            guide_id=touch.guide_id,
            previous_guide_id=previous.guide_id if previous else None,
            source=touch.source.value,
            reason=decision.reason,
            protected_until=decision.protected_until,
        ),
        aggregate_type="member",
        aggregate_id=member_id,
        store_id=store_id,
        occurred_at=touch.at,
    )
    return binding


def lock_guides(
    session: Session, guide_ids: Iterable[uuid.UUID], *, leaving: uuid.UUID | None = None
) -> dict[uuid.UUID, Guide]:
    """The guides' rows, locked until the transaction ends and read afresh: ``leaving``'s
    exclusively (her standing is about to change), the others shared (their standing holds
    while we rely on it). Ids that are no guide are missing from the answer.

    One row at a time in the order of the ids, and always before any member's row: a touch
    holds one guide, then one member; a leave holds her and the colleagues who may take her
    customers, then those customers one by one. So they wait for each other, never in a circle.
    """
    locked: dict[uuid.UUID, Guide] = {}
    for guide_id in sorted(set(guide_ids)):
        exclusive = guide_id == leaving
        # FOR NO KEY UPDATE, not FOR UPDATE: rows naming her by foreign key (a sale attributed
        # to her, a commission entry) need not wait for her leaving; a touch's FOR SHARE does.
        guide = session.scalars(
            select(Guide)
            .where(Guide.staff_id == guide_id)
            .with_for_update(read=not exclusive, key_share=exclusive)
            .execution_options(populate_existing=True)
        ).one_or_none()
        if guide is not None:
            locked[guide_id] = guide
    return locked


def lock_members(session: Session, member_ids: Iterable[uuid.UUID]) -> None:
    """Lock the (surviving) rows of these members, one at a time in the order of their ids,
    before a change of several of them touches each in its own order. The caller holds the
    guides it needs already (guides before members). Ids that are no member are skipped: the
    change meets them, and says so, in its own order."""
    survivors = session.scalars(
        select(func.coalesce(Member.merged_into_id, Member.id)).where(
            Member.id.in_(list(set(member_ids)))
        )
    )
    for member_id in sorted(set(survivors)):
        lock_member(session, member_id, allow_erased=True)


def touch_member(
    session: Session,
    member_id: uuid.UUID,
    guide_id: uuid.UUID,
    source: BindingSource,
    *,
    at: datetime,
    source_ref: str | None = None,
) -> BindingOutcome:
    """Apply one touch of a guide to a member. A guide who left, or who is not a guide, binds
    nobody (the outcome says so); the member must exist and not be erased."""
    return _touch(session, member_id, guide_id, source, at=at, source_ref=source_ref)


def _refused(member_id: uuid.UUID, reason: str, current: GuideBinding | None) -> BindingOutcome:
    return BindingOutcome(
        member_id,
        BindingDecision(BindingVerdict.REFUSE, reason, None),
        current.guide_id if current else None,
        current.id if current else None,
    )


def _touch(
    session: Session,
    member_id: uuid.UUID,
    guide_id: uuid.UUID,
    source: BindingSource,
    *,
    at: datetime,
    source_ref: str | None,
    handing_over_from: uuid.UUID | None = None,
) -> BindingOutcome:
    """:func:`touch_member`; a handover (``handing_over_from`` the guide who leaves) moves only
    a member who is still that guide's."""
    # Her standing is read under the lock her leaving takes: a leave in progress is waited for.
    guide = lock_guides(session, [guide_id]).get(guide_id)
    member = lock_member(session, member_id)
    current = current_binding(session, member.id)
    if guide is None or guide.status is not GuideStatus.ACTIVE:
        return _refused(member.id, "guide_not_active", current)
    if handing_over_from is not None:
        if current is None or current.guide_id != handing_over_from:
            # Moved on while the leave waited for her row (a manager's reassignment, the guide
            # removed on WeCom, a merge): she is no longer the leaving guide's to hand over.
            return _refused(member.id, "not_the_leaving_guides", current)
        # The leave is the store's decision: a touch of hers stamped later than it (another
        # process's clock, an event's own time) must not keep the member with a guide who left.
        at = max(at, current.bound_at)
    terms = program_terms(session)
    facts = None
    if current is not None:
        current_guide = session.get(Guide, current.guide_id)
        facts = CurrentBinding(
            guide_id=current.guide_id,
            bound_at=current.bound_at,
            protected_until=current.protected_until,
            guide_active=current_guide is not None and current_guide.status is GuideStatus.ACTIVE,
        )
    touch = Touch(guide_id=guide_id, source=source, at=at)
    decision = decide_binding(facts, touch, terms.binding_rule, terms.protection)
    if decision.verdict is BindingVerdict.REFUSE:
        assert current is not None
        return BindingOutcome(member.id, decision, current.guide_id, current.id)
    if decision.verdict is BindingVerdict.KEEP:
        assert current is not None and decision.protected_until is not None
        current.protected_until = decision.protected_until
        session.flush()
        return BindingOutcome(member.id, decision, current.guide_id, current.id)
    binding = _bind(session, member.id, touch, decision, current, source_ref, guide.home_store_id)
    return BindingOutcome(member.id, decision, guide_id, binding.id)


def hand_over_customers(
    session: Session,
    member_ids: Sequence[uuid.UUID],
    pool: Sequence[tuple[uuid.UUID, int]],
    *,
    from_guide: uuid.UUID,
    at: datetime,
) -> dict[uuid.UUID, int]:
    """Rebind each member who is still ``from_guide``'s to the pool's guide with the fewest
    customers so far (ties: the pool's order). Returns how many each guide received.

    The caller holds the pool's rows (:func:`lock_guides`) before calling: each handover locks
    its guide again, and a guide first locked after a member would break the lock order. The
    members are locked in the order of their ids first, then handed over in the order given."""
    lock_members(session, member_ids)
    load = {gid: n for gid, n in pool}
    order = {gid: i for i, (gid, _) in enumerate(pool)}
    received: dict[uuid.UUID, int] = {}
    for member_id in member_ids:
        to = min(load, key=lambda g: (load[g], order[g]))
        outcome = _touch(
            session,
            member_id,
            to,
            BindingSource.HANDOVER,
            at=at,
            source_ref=str(from_guide),
            handing_over_from=from_guide,
        )
        if outcome.guide_id == to:
            load[to] += 1
            received[to] = received.get(to, 0) + 1
    return received


def reassign_customers(
    session: Session, member_ids: Sequence[uuid.UUID], guide_id: uuid.UUID, *, at: datetime
) -> list[BindingOutcome]:
    """A manager's decision: these members are now this guide's (outcomes in the order given).

    The guide's row is locked first, then the members' in the order of their ids, whatever the
    order of the list: as a leave handing some of them over does, so the two never deadlock."""
    lock_guides(session, [guide_id])
    lock_members(session, member_ids)
    return [
        touch_member(session, m, guide_id, BindingSource.MANAGER, at=at, source_ref="manager")
        for m in member_ids
    ]


def unbind_member(
    session: Session, member_id: uuid.UUID, guide_id: uuid.UUID, *, at: datetime, reason: str
) -> bool:
    """End the member's binding to this guide (if she is still this guide's); True if ended."""
    member = lock_member(session, member_id, allow_erased=True)
    current = current_binding(session, member.id)
    if current is None or current.guide_id != guide_id:
        return False
    _end(current, at, reason)
    session.flush()
    guide = session.get(Guide, guide_id)
    record_event(
        session,
        GuideCustomerUnbound(member_id=member.id, guide_id=guide_id, reason=reason),
        aggregate_type="member",
        aggregate_id=member.id,
        store_id=guide.home_store_id if guide else None,
        occurred_at=at,
    )
    return True


@merge_step("guide_binding")
def move_binding_on_merge(
    session: Session, merged_id: uuid.UUID, survivor_id: uuid.UUID
) -> dict[str, Any]:
    """The survivor keeps her own guide; if she had none, she takes the merged member's."""
    merged = current_binding(session, merged_id)
    if merged is None:
        return {"moved": None}
    survivor = current_binding(session, survivor_id)
    if survivor is not None:
        _end(merged, utcnow(), "merged")
        session.flush()
        return {"moved": None, "ended": str(merged.id), "kept": str(survivor.id)}
    session.execute(
        update(GuideBinding)
        .where(GuideBinding.id == merged.id)
        .values(member_id=survivor_id)
        .execution_options(synchronize_session="fetch")
    )
    return {"moved": str(merged.id)}
