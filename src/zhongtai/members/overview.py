"""The member 360: one read of who she is and everything the chain knows of her, each part
answered by the context that owns it.

Members supplies her profile, identities (masked by role) and consents; orders, points,
coupons and her guide come from the sections other contexts register
(``members.hooks.overview_section``), so members still imports no other context. A merged
member's id answers her survivor's overview, and every section reads under all the ids merged
into her, so a sale recorded under an old id still counts.

The ``feedback`` section (after-sales cases, NPS answers) is the feedback context's to
register when it arrives; until then the overview answers it as null.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from zhongtai.members.hooks import OVERVIEW_SECTIONS
from zhongtai.members.identity import member_ids_of
from zhongtai.members.pii import PiiCipher
from zhongtai.members.profile import MemberView, describe_member


@dataclass(frozen=True)
class MemberOverview:
    view: MemberView
    #: Members merged into her: their ids answer this overview too.
    merged_member_ids: list[uuid.UUID]
    #: Each registered section's data, by section name.
    sections: dict[str, Any]


def member_overview(
    session: Session,
    cipher: PiiCipher,
    member_id: uuid.UUID,
    *,
    may_see_pii: bool,
    now: datetime,
) -> MemberOverview:
    """Her overview as of ``now`` (404 when no member has this id). Identities are masked unless
    ``may_see_pii``, exactly as reading the member answers them."""
    view = describe_member(session, cipher, member_id, may_see_pii=may_see_pii)
    ids = member_ids_of(session, view.member.id)
    sections = {
        name: section(session, ids, now) for name, section in sorted(OVERVIEW_SECTIONS.items())
    }
    return MemberOverview(view, ids[1:], sections)
