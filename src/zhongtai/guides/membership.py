"""The guide's part of a member's overview (the member 360): who looks after her now, and
what the guides forget of her when she is erased.

Her binding follows a merge by the ``guide_binding`` step in binding.py, her WeCom contacts by
the ``wecom_contacts`` step here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.core.auth.models import StaffUser
from zhongtai.core.clock import utcnow
from zhongtai.guides.binding import unbind_member
from zhongtai.guides.models import Guide, GuideBinding, WeComContact
from zhongtai.members.hooks import erase_step, merge_step, overview_section
from zhongtai.stores.models import Location


@overview_section("guide")
def guide_overview(session: Session, member_ids: list[uuid.UUID], now: datetime) -> Any:
    """Her current guide (name, home store, since when, how she was bound), or none. One
    statement. The survivor's binding is the one that counts: a merge kept hers, or moved the
    merged member's to her, and ended the other."""
    row = session.execute(
        select(
            GuideBinding.guide_id,
            StaffUser.display_name,
            Guide.status,
            Guide.home_store_id,
            Location.name,
            GuideBinding.bound_at,
            GuideBinding.source,
            GuideBinding.protected_until,
        )
        .join(Guide, Guide.staff_id == GuideBinding.guide_id)
        .join(StaffUser, StaffUser.id == Guide.staff_id)
        .join(Location, Location.id == Guide.home_store_id)
        .where(GuideBinding.member_id == member_ids[0], GuideBinding.ended_at.is_(None))
    ).first()
    if row is None:
        return {"current": None}
    return {
        "current": {
            "guide_id": row.guide_id,
            "name": row.display_name,
            "guide_status": row.status.value,
            "store_id": row.home_store_id,
            "store_name": row.name,
            "since": row.bound_at,
            "source": row.source.value,
            "protected_until": row.protected_until,
        }
    }


@erase_step("guide_binding")
def forget_guide_ties(session: Session, member_ids: list[uuid.UUID]) -> dict[str, Any]:
    """She leaves her guide's customer list (the binding ends, reason ``erased``, announced as
    any unbinding is) and her WeCom contacts no longer point at her. Past bindings stay as the
    books of the commission paid on her sales, under her pseudonymous id."""
    now = utcnow()
    current = session.execute(
        select(GuideBinding.member_id, GuideBinding.guide_id).where(
            GuideBinding.member_id.in_(member_ids), GuideBinding.ended_at.is_(None)
        )
    ).all()
    ended = sum(
        unbind_member(session, member_id, guide_id, at=now, reason="erased")
        for member_id, guide_id in current
    )
    contacts = session.execute(
        update(WeComContact)
        .where(WeComContact.member_id.in_(member_ids))
        .values(member_id=None)
        .execution_options(synchronize_session=False)
    )
    return {
        "bindings_ended": ended,
        "wecom_contacts_unlinked": contacts.rowcount,  # type: ignore[attr-defined]
    }


@merge_step("wecom_contacts")
def move_wecom_contacts_on_merge(
    session: Session, merged_id: uuid.UUID, survivor_id: uuid.UUID
) -> dict[str, Any]:
    """The merged member's WeCom contacts become the survivor's, as her WeChat unionid does: her
    guide's phone offers WeCom for her, and the contacts' later events reach her. Each row is
    one guide's contact with one WeChat account (unique), so it moves as it is: a contact the
    survivor already had stays hers, once, and none is copied. The merge holds both members'
    rows, under which every change of a contact's member is made (wecom_contacts.py)."""
    moved = session.scalars(
        update(WeComContact)
        .where(WeComContact.member_id == merged_id)
        .values(member_id=survivor_id)
        .returning(WeComContact.id)
        .execution_options(synchronize_session="fetch")
    ).all()
    return {"moved": sorted(str(contact_id) for contact_id in moved)}
