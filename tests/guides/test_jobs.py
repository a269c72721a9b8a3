"""The guides' scheduled work run by `serve`: task lists by each store's local day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain
from zhongtai.guides import binding
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.jobs import generate_todays_tasks
from zhongtai.guides.task_models import GuideTask


def test_tasks_are_made_for_the_stores_local_day_and_only_once(
    chain: Chain, enroll_guide: EnrollGuide, make_member: MakeMember, session: Session
) -> None:
    guide = enroll_guide(chain.store)  # the store is in Asia/Shanghai (UTC+8)
    # 17:30 UTC on 25 November is already 01:30 on 26 November in Shanghai: a birthday on
    # 3 December is within the week there, but would not be for a list made on the UTC date.
    now = datetime(2026, 11, 25, 17, 30, tzinfo=UTC)
    member = make_member(birthday=date(1990, 12, 3))
    binding.touch_member(session, member.id, guide.id, BindingSource.WECOM, at=now)
    assert generate_todays_tasks(session, now=now) == 1
    assert generate_todays_tasks(session, now=now) == 0
    [task] = session.scalars(select(GuideTask).where(GuideTask.guide_id == guide.id)).all()
    assert (task.kind.value, task.due_on) == ("birthday", date(2026, 11, 26))
