"""The guides of the chain: enrolling a guide-role staff user, her standing, and her leaving —
when a guide leaves, her customers are handed over (to a chosen colleague, or by rule to the
colleagues of her store with the fewest customers) and the history is kept."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
from zhongtai.core.auth.models import StaffUser
from zhongtai.core.auth.roles import Role
from zhongtai.core.errors import AlreadyExists, Conflict, InvalidInput
from zhongtai.core.outbox import record_event
from zhongtai.guides.attribution_rules import GuideStanding
from zhongtai.guides.binding import hand_over_customers, lock_guides
from zhongtai.guides.errors import GuideHasLeft, NotAGuide
from zhongtai.guides.events import GuideLeft
from zhongtai.guides.models import Guide, GuideBinding, GuideStatus
from zhongtai.orders.selling_guides import guide_roster
from zhongtai.stores.models import Location


def enroll_guide(
    session: Session,
    staff_id: uuid.UUID,
    *,
    home_store_id: uuid.UUID | None = None,
    level: str = "standard",
    wecom_userid: str | None = None,
) -> Guide:
    """Make a staff user with the guide role a guide of one of her stores."""
    staff = session.get(StaffUser, staff_id)
    if staff is None:
        raise InvalidInput.field("staff_id", "no such staff user")
    if staff.role is not Role.GUIDE:
        raise InvalidInput.field("staff_id", f"the staff user's role is {staff.role}, not guide")
    if session.get(Guide, staff_id) is not None:
        raise AlreadyExists(f"Staff user {staff_id} is already a guide.", guide_id=str(staff_id))
    stores = staff.store_ids
    home = home_store_id or (stores[0] if len(stores) == 1 else None)
    if home is None or home not in stores:
        raise InvalidInput.field("home_store_id", "must be one of the guide's assigned stores")
    if wecom_userid is not None:
        taken = session.scalar(select(Guide.staff_id).where(Guide.wecom_userid == wecom_userid))
        if taken is not None:
            raise AlreadyExists(
                f"WeCom user {wecom_userid!r} is already guide {taken}.", guide_id=str(taken)
            )
    guide = Guide(staff_id=staff_id, home_store_id=home, level=level, wecom_userid=wecom_userid)
    session.add(guide)
    session.flush()
    record_audit(
        session,
        "guide.enrolled",
        "guide",
        staff_id,
        None,
        {"home_store_id": home, "level": level, "wecom_userid": wecom_userid},
        store_id=home,
    )
    return guide


def get_guide(session: Session, guide_id: uuid.UUID, *, for_update: bool = False) -> Guide:
    guide = session.get(Guide, guide_id, with_for_update=for_update)
    if guide is None:
        raise NotAGuide(guide_id)
    return guide


def active_guide(session: Session, guide_id: uuid.UUID) -> Guide:
    guide = get_guide(session, guide_id)
    if guide.status is not GuideStatus.ACTIVE:
        raise GuideHasLeft(guide_id)
    return guide


def guide_by_wecom_user(session: Session, wecom_userid: str) -> Guide | None:
    return session.scalar(select(Guide).where(Guide.wecom_userid == wecom_userid))


@guide_roster
def standings(session: Session, guide_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, GuideStanding]:
    """Each id's home store and whether she is still a guide, in one statement (none for no
    ids); ids that are no guide are missing. Orders reads it to check the guide a sale names."""
    ids = {g for g in guide_ids if g is not None}
    if not ids:
        return {}
    rows = session.execute(
        select(Guide.staff_id, Guide.home_store_id, Guide.status).where(Guide.staff_id.in_(ids))
    )
    return {
        gid: GuideStanding(gid, store, status is GuideStatus.ACTIVE) for gid, store, status in rows
    }


def change_guide(
    session: Session,
    guide_id: uuid.UUID,
    *,
    level: str | None = None,
    wecom_userid: str | None = None,
) -> Guide:
    guide = get_guide(session, guide_id, for_update=True)
    before = {"level": guide.level, "wecom_userid": guide.wecom_userid}
    if wecom_userid is not None and wecom_userid != guide.wecom_userid:
        taken = session.scalar(select(Guide.staff_id).where(Guide.wecom_userid == wecom_userid))
        if taken is not None:
            raise AlreadyExists(
                f"WeCom user {wecom_userid!r} is already guide {taken}.", guide_id=str(taken)
            )
        guide.wecom_userid = wecom_userid
    if level is not None:
        guide.level = level
    session.flush()
    record_audit(
        session,
        "guide.changed",
        "guide",
        guide_id,
        before,
        {"level": guide.level, "wecom_userid": guide.wecom_userid},
        store_id=guide.home_store_id,
    )
    return guide


@dataclass(frozen=True)
class Departure:
    guide_id: uuid.UUID
    handed_over: dict[uuid.UUID, int]


def _colleagues(
    session: Session, guide: Guide, among: Collection[uuid.UUID]
) -> Sequence[tuple[uuid.UUID, int]]:
    """Active guides of her store (of those ``among``) with their current number of customers,
    fewest first."""
    customers = (
        select(GuideBinding.guide_id, func.count().label("n"))
        .where(GuideBinding.ended_at.is_(None))
        .group_by(GuideBinding.guide_id)
        .subquery()
    )
    rows = session.execute(
        select(Guide.staff_id, func.coalesce(customers.c.n, 0))
        .outerjoin(customers, customers.c.guide_id == Guide.staff_id)
        .where(
            Guide.home_store_id == guide.home_store_id,
            Guide.status == GuideStatus.ACTIVE,
            Guide.staff_id != guide.staff_id,
            Guide.staff_id.in_(among),
        )
        .order_by(func.coalesce(customers.c.n, 0), Guide.staff_id)
    )
    return [(gid, int(n)) for gid, n in rows]


def guide_leaves(
    session: Session,
    guide_id: uuid.UUID,
    *,
    at: datetime,
    successor_id: uuid.UUID | None = None,
) -> Departure:
    """She leaves: her status becomes ``left`` and every customer is handed over — all to
    ``successor_id`` when the manager chose one, otherwise spread over her store's other active
    guides, each customer to whoever has the fewest at that moment. Her earned commission stays
    hers. Refused when she has customers and nobody can take them."""
    home_store_id = session.scalar(select(Guide.home_store_id).where(Guide.staff_id == guide_id))
    if home_store_id is None:
        raise NotAGuide(guide_id)
    # Her row and the rows of whoever may take her customers are locked before anything is
    # read: a touch of hers waits for her leaving (and then binds nobody), a colleague leaving
    # at the same moment waits too (and then finds her gone and the customers she handed on).
    takers = (
        [successor_id]
        if successor_id is not None
        else session.scalars(
            select(Guide.staff_id).where(
                Guide.home_store_id == home_store_id, Guide.status == GuideStatus.ACTIVE
            )
        )
    )
    locked = lock_guides(session, [guide_id, *takers], leaving=guide_id)
    guide = locked[guide_id]
    if guide.status is GuideStatus.LEFT:
        raise GuideHasLeft(guide_id)
    if successor_id is not None:
        if successor_id == guide_id:
            raise InvalidInput.field("successor_id", "must be another guide")
        successor = locked.get(successor_id)
        if successor is None:
            raise NotAGuide(successor_id)
        if successor.status is not GuideStatus.ACTIVE:
            raise GuideHasLeft(successor_id)
        pool = [(successor.staff_id, 0)]
    else:
        pool = list(_colleagues(session, guide, among=list(locked)))
    members = list(
        session.scalars(
            select(GuideBinding.member_id)
            .where(GuideBinding.guide_id == guide_id, GuideBinding.ended_at.is_(None))
            .order_by(GuideBinding.bound_at, GuideBinding.member_id)
        )
    )
    if members and not pool:
        raise Conflict(
            f"Guide {guide_id} has {len(members)} customers and her store has no other active "
            "guide to take them: name a successor.",
            customers=len(members),
        )
    guide.status = GuideStatus.LEFT
    guide.left_at = at
    guide.successor_id = successor_id
    session.flush()
    handed = hand_over_customers(session, members, pool, from_guide=guide_id, at=at)
    record_audit(
        session,
        "guide.left",
        "guide",
        guide_id,
        {"status": GuideStatus.ACTIVE},
        {"status": GuideStatus.LEFT, "handed_over": {str(k): v for k, v in handed.items()}},
        store_id=guide.home_store_id,
    )
    record_event(
        session,
        GuideLeft(
            guide_id=guide_id,
            store_id=guide.home_store_id,
            customers_handed_over=sum(handed.values()),
            successor_ids=sorted(handed),
        ),
        aggregate_type="guide",
        aggregate_id=guide_id,
        store_id=guide.home_store_id,
        occurred_at=at,
    )
    return Departure(guide_id, handed)


def store_of(session: Session, store_id: uuid.UUID) -> Location:
    store = session.get(Location, store_id)
    if store is None:
        raise InvalidInput.field("store_id", "no such store")
    return store
