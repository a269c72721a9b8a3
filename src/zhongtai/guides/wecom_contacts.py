"""WeCom external contacts of guides: a customer adding a guide binds her (found by her WeChat
unionid); removing each other ends the binding — except when WeCom moved the contact to
another guide in a handover, which that guide's own add event follows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.db import conflict_insert
from zhongtai.guides.binding import BindingOutcome, lock_guides, touch_member, unbind_member
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.guides.models import WeComCallbackReceipt, WeComContact
from zhongtai.guides.roster import guide_by_wecom_user
from zhongtai.integrations.wecom.directory import ExternalContactDirectory
from zhongtai.integrations.wecom.messages import ExternalContactChange, ExternalContactChanged
from zhongtai.members.identity import find_member_id, lock_member
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


def _contact(session: Session, guide_id: uuid.UUID, external_userid: str) -> WeComContact | None:
    return session.scalars(
        select(WeComContact)
        .where(WeComContact.guide_id == guide_id, WeComContact.external_userid == external_userid)
        .execution_options(populate_existing=True)
    ).one_or_none()


def apply_contact_change(
    session: Session,
    cipher: PiiCipher,
    change: ExternalContactChanged,
    unionid: str | None,
) -> ContactOutcome:
    """Apply one ``change_external_contact`` event. ``unionid`` is the contact's WeChat unionid
    (from the directory, for additions).

    The member a contact row names is changed only under her row's lock, taken before the
    contact row is written (after the guide's, the order of every touch): a merge or an
    erasure, which move or unlink her contacts under the same lock, is waited for, never
    met in a circle."""
    guide = guide_by_wecom_user(session, change.user_id)
    if guide is None:
        return ContactOutcome("unknown_guide")
    if change.change_type in ADDED:
        return _added(session, cipher, change, guide.staff_id, unionid)
    contact = _contact(session, guide.staff_id, change.external_user_id)
    if change.change_type in REMOVED:
        if contact is None:
            return ContactOutcome("ignored")
        return _removed(session, change, contact)
    return ContactOutcome("ignored", contact)


def _added(
    session: Session,
    cipher: PiiCipher,
    change: ExternalContactChanged,
    guide_id: uuid.UUID,
    unionid: str | None,
) -> ContactOutcome:
    at = change.created_at
    found = (
        find_member_id(session, cipher, IdentityKind.WECHAT_UNIONID, unionid) if unionid else None
    )
    contact = _contact(session, guide_id, change.external_user_id)
    member_id = found or (contact.member_id if contact is not None else None)
    if member_id is not None:
        lock_guides(session, [guide_id])
        member_id = lock_member(session, member_id).id
        contact = _contact(session, guide_id, change.external_user_id)  # as of the lock
    if contact is None:
        contact = WeComContact(
            guide_id=guide_id,
            external_userid=change.external_user_id,
            added_at=at,
            state=(change.state or None) and change.state[:64],
        )
        session.add(contact)
    contact.member_id = member_id
    contact.removed_at = None
    contact.removed_by = None
    session.flush()
    if member_id is None:
        return ContactOutcome("recorded", contact)
    outcome = touch_member(
        session, member_id, guide_id, BindingSource.WECOM, at=at, source_ref=change.external_user_id
    )
    verdict = outcome.decision.verdict.value
    result = {"bind": "bound", "rebind": "bound", "keep": "kept"}.get(verdict, "refused")
    return ContactOutcome(result, contact, outcome)


def _removed(
    session: Session, change: ExternalContactChanged, contact: WeComContact
) -> ContactOutcome:
    if contact.member_id is not None:
        lock_member(session, contact.member_id, allow_erased=True)
        session.refresh(contact)  # as of the lock: a merge or erasure may have moved it
    if contact.removed_at is None:
        contact.removed_at = change.created_at
        contact.removed_by = change.change_type.value[:24]
    session.flush()
    if change.source == MOVED_BY_TRANSFER or contact.member_id is None:
        return ContactOutcome("recorded", contact)
    reason = (
        "wecom_customer_left"
        if change.change_type is ExternalContactChange.DEL_FOLLOW_USER
        else "wecom_removed"
    )
    ended = unbind_member(
        session, contact.member_id, contact.guide_id, at=change.created_at, reason=reason
    )
    return ContactOutcome("unbound" if ended else "recorded", contact)


def claim_callback(session: Session, replay_key: str, *, at: datetime) -> bool:
    """Record that this signed callback is being applied in this transaction; False when it was
    applied before. One ``INSERT ... ON CONFLICT DO NOTHING``: a copy arriving while the first
    is still being applied waits for it on the key, then finds it taken (or, if the first
    failed and rolled back, takes it and applies it itself) — never a unique violation."""
    insert = conflict_insert(session)
    claimed = session.execute(
        insert(WeComCallbackReceipt)
        .values(replay_key=replay_key, received_at=at)
        .on_conflict_do_nothing(index_elements=[WeComCallbackReceipt.replay_key])
        .returning(WeComCallbackReceipt.replay_key)
    ).first()
    return claimed is not None


def lookup_unionid(
    directory: ExternalContactDirectory | None, change: ExternalContactChanged
) -> str | None:
    """The contact's unionid for additions (None without a directory or for other changes)."""
    if directory is None or change.change_type not in ADDED:
        return None
    return directory.unionid_of(change.external_user_id)
