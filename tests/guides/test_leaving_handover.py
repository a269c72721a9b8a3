"""A guide's leaving hands over every customer still hers, whatever time her last touch carries,
and a guide who has left binds nobody — on both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain
from zhongtai.core.clock import utcnow
from zhongtai.guides import binding, roster
from zhongtai.guides.binding_rules import BindingSource, BindingVerdict
from zhongtai.guides.models import GuideBinding


def test_a_customer_whose_binding_is_stamped_after_her_leaving_is_still_handed_over(
    chain: Chain, enroll_guide: EnrollGuide, make_member: MakeMember, session: Session
) -> None:
    leaving, successor = enroll_guide(chain.store), enroll_guide(chain.store)
    now = utcnow()
    member = make_member()
    # A WeCom event carries WeCom's clock: it may read later than the moment she leaves.
    binding.touch_member(
        session, member.id, leaving.id, BindingSource.WECOM, at=now + timedelta(minutes=5)
    )

    departure = roster.guide_leaves(session, leaving.id, at=now, successor_id=successor.id)

    assert departure.handed_over == {successor.id: 1}
    history = session.scalars(
        select(GuideBinding)
        .where(GuideBinding.member_id == member.id)
        .order_by(GuideBinding.bound_at)
    ).all()
    assert [(b.guide_id, b.end_reason) for b in history] == [
        (leaving.id, "handover"),
        (successor.id, None),
    ]
    # The handover never ends a binding before it began, nor starts one before the last ended.
    assert history[0].ended_at == history[1].bound_at == now + timedelta(minutes=5)


def test_a_guide_who_has_left_binds_nobody_and_her_answer_names_the_current_guide(
    chain: Chain, enroll_guide: EnrollGuide, make_member: MakeMember, session: Session
) -> None:
    leaving, successor = enroll_guide(chain.store), enroll_guide(chain.store)
    now = utcnow()
    hers, newcomer = make_member(), make_member()
    binding.touch_member(session, hers.id, leaving.id, BindingSource.SHARE_LINK, at=now)
    roster.guide_leaves(session, leaving.id, at=now, successor_id=successor.id)

    for member, guide_now in [(hers, successor.id), (newcomer, None)]:
        outcome = binding.touch_member(
            session, member.id, leaving.id, BindingSource.SHARE_LINK, at=now + timedelta(hours=1)
        )
        assert (outcome.decision.verdict, outcome.decision.reason) == (
            BindingVerdict.REFUSE,
            "guide_not_active",
        )
        assert outcome.guide_id == guide_now
        current = binding.current_binding(session, member.id)
        assert (current.guide_id if current else None) == guide_now
