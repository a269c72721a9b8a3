"""Ending a price override at the edges of its window: one with a planned end, one starting at
the very moment it is ended."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.catalog.conftest import HQ, CatalogFactory
from zhongtai.catalog import service
from zhongtai.catalog.models import PriceOverride
from zhongtai.core.audit import AuditEntry
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, NotFound


def _actions(session: Session, override: PriceOverride) -> list[str]:
    return list(
        session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_id == str(override.id))
            .order_by(AuditEntry.id)
        )
    )


def test_ending_a_week_long_override_midway_ends_it_now_and_a_second_end_is_a_409(
    session: Session, catalog: CatalogFactory
) -> None:
    start = utcnow() - timedelta(days=1)
    override = catalog.override(
        catalog.sku(), 700, valid_from=start, valid_to=start + timedelta(days=7)
    )
    now = utcnow()
    ended = service.end_price_override(session, override.id, caller=HQ, at=now)
    assert ended is not None and ended.valid_to == now
    session.commit()
    with pytest.raises(Conflict, match=re.escape(f"already ended at {now.isoformat()}.")):
        service.end_price_override(session, override.id, caller=HQ)
    assert _actions(session, override) == ["price_override.created", "price_override.ended"]


def test_an_override_ended_at_the_moment_it_starts_is_withdrawn(
    session: Session, catalog: CatalogFactory
) -> None:
    """It has charged nothing yet; ending it there used to break the window's order (an end
    equal to its start) and fail with a database error."""
    start = utcnow() + timedelta(hours=1)
    override = catalog.override(catalog.sku(), 700, valid_from=start)
    override_id = override.id
    assert service.end_price_override(session, override_id, caller=HQ, at=start) is None
    session.commit()
    assert session.get(PriceOverride, override_id) is None
    with pytest.raises(NotFound):
        service.end_price_override(session, override_id, caller=HQ)
    assert _actions(session, override) == ["price_override.created", "price_override.withdrawn"]
