"""WeCom external contacts of guides: a customer adding a guide binds her (found by her WeChat
unionid); removing each other ends the binding — except when WeCom moved the contact to
another guide in a handover, which that guide's own add event follows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.guides.binding import BindingOutcome, touch_member, unbind_member
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.models import WeComContact
from zhongtai.guides.roster import guide_by_wecom_user
from zhongtai.integrations.wecom.directory import ExternalContactDirectory
from zhongtai.integrations.wecom.messages import ExternalContactChange, ExternalContactChanged
from zhongtai.members.identity import find_member_id
from zhongtai.members.models import IdentityKind
from zhongtai.members.pii import PiiCipher

ADDED = frozenset(
    {ExternalContactChange.ADD_EXTERNAL_CONTACT, ExternalContactChange.ADD_HALF_EXTERNAL_CONTACT}
)
REMOVED = frozenset(
    {ExternalContactChange.DEL_EXTERNAL_CONTACT, ExternalContactChange.DEL_FOLLOW_USER}
)
#: WeCom's Source on del_external_contact when the contact went to another guide.
MOVED_BY_TRANSFER = "DELETE_BY_TRANSFER"


@dataclass(frozen=True)
class ContactOutcome:
    #: "bound", "kept", "refused", "unbound", "recorded", "unknown_guide", "ignored".
    result: str
    contact: WeComContact | None = None
    binding: BindingOutcome | None = None


def _contact(session: Session, guide_id: object, external_userid: str) -> WeComContact | None:
    return session.scalar(
        select(WeComContact).where(
            WeComContact.guide_id == guide_id, WeComContact.external_userid == external_userid
        )
    )


def apply_contact_change(
    session: Session,
    cipher: PiiCipher,
    change: ExternalContactChanged,
    unionid: str | None,
) -> ContactOutcome:
    """Apply one ``change_external_contact`` event. ``unionid`` is the contact's WeChat unionid
    (from the directory, for additions)."""
    guide = guide_by_wecom_user(session, change.user_id)
    if guide is None:
        return ContactOutcome("unknown_guide")
    at = change.created_at
    contact = _contact(session, guide.staff_id, change.external_user_id)
    if change.change_type in ADDED:
        member_id = (
            find_member_id(session, cipher, IdentityKind.WECHAT_UNIONID, unionid)
            if unionid
            else None
        )
        if contact is None:
            contact = WeComContact(
                guide_id=guide.staff_id,
                external_userid=change.external_user_id,
                added_at=at,
                state=(change.state or None) and change.state[:64],
            )
            session.add(contact)
        contact.member_id = member_id or contact.member_id
        contact.removed_at = None
        contact.removed_by = None
        session.flush()
        if contact.member_id is None:
            return ContactOutcome("recorded", contact)
        outcome = touch_member(
            session,
            contact.member_id,
            guide.staff_id,
            BindingSource.WECOM,
            at=at,
            source_ref=change.external_user_id,
        )
        verdict = outcome.decision.verdict.value
        result = {"bind": "bound", "rebind": "bound", "keep": "kept"}.get(verdict, "refused")
        return ContactOutcome(result, contact, outcome)
    if change.change_type in REMOVED:
        if contact is None:
            return ContactOutcome("ignored")
        if contact.removed_at is None:
            contact.removed_at = at
            contact.removed_by = change.change_type.value[:24]
        session.flush()
        if change.source == MOVED_BY_TRANSFER or contact.member_id is None:
            return ContactOutcome("recorded", contact)
        reason = (
            "wecom_customer_left"
            if change.change_type is ExternalContactChange.DEL_FOLLOW_USER
            else "wecom_removed"
        )
        ended = unbind_member(session, contact.member_id, guide.staff_id, at=at, reason=reason)
        return ContactOutcome("unbound" if ended else "recorded", contact)
    return ContactOutcome("ignored", contact)


def lookup_unionid(
    directory: ExternalContactDirectory | None, change: ExternalContactChanged
) -> str | None:
    """The contact's unionid for additions (None without a directory or for other changes)."""
    if directory is None or change.change_type not in ADDED:
        return None
    return directory.unionid_of(change.external_user_id)
