"""The guides' scheduled work: each store's task list for its local day, and pending
commission maturing once the return window has closed."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.guides.ledger import mature_commission
from zhongtai.guides.models import Guide, GuideStatus
from zhongtai.guides.tasks import generate_tasks
from zhongtai.stores.models import Location


def generate_todays_tasks(session: Session, *, now: datetime | None = None) -> int:
    """Every store with active guides gets the tasks due on its own local date; how many tasks
    were added (running it again the same day adds nothing)."""
    now = now or utcnow()
    stores = session.execute(
        select(Location.id, Location.timezone)
        .where(
            Location.id.in_(select(Guide.home_store_id).where(Guide.status == GuideStatus.ACTIVE))
        )
        .order_by(Location.code)
    ).all()
    added = 0
    for store_id, zone in stores:
        today = now.astimezone(ZoneInfo(zone)).date()
        added += generate_tasks(session, today=today, now=now, store_id=store_id).created_total
    return added


def mature_commission_now(session: Session) -> int:
    return mature_commission(session, now=utcnow())
