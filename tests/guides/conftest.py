"""Guide builders: a guide enrolled at a store with her own signed-in headers, the event relay,
and the order chain's fixtures (a store with stock, keys and staff)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from tests.factories import TEST_SECRET, Factory
from tests.members.conftest import cipher, make_member  # noqa: F401 (fixtures)
from tests.orders.conftest import chain, stock  # noqa: F401 (fixtures)
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import StaffUser
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.guides import roster
from zhongtai.guides.models import Guide
from zhongtai.integrations.relay import Relay
from zhongtai.stores.models import Location


@dataclass
class GuideAtWork:
    guide: Guide
    staff: StaffUser
    headers: dict[str, str]

    @property
    def id(self) -> object:
        return self.guide.staff_id


EnrollGuide = Callable[..., GuideAtWork]


@pytest.fixture
def enroll_guide(session: Session, factory: Factory) -> EnrollGuide:
    def enroll(
        store: Location, *, level: str = "standard", wecom: str | None = None
    ) -> GuideAtWork:
        staff = factory.staff(Role.GUIDE, [store])
        guide = roster.enroll_guide(session, staff.id, level=level, wecom_userid=wecom)
        issued = auth.open_session(
            session, staff, secret=TEST_SECRET, ttl=timedelta(hours=1), client_ip="127.0.0.1"
        )
        session.commit()
        return GuideAtWork(guide, staff, {"Authorization": f"Bearer {issued.access_token}"})

    return enroll


def relay(test_db: Database) -> None:
    """Deliver the committed events to the in-process handlers (as `serve` does)."""
    relay_ = Relay(test_db.writer, holder="guides-test")
    while asyncio.run(relay_.run_once()):
        pass
