"""HTTP endpoints of members: find-or-create, profile, consent, the overview (member 360),
export, erasure and merge."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends, Request, Response, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import NotFound
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router, replay_concerns
from zhongtai.core.http.security import require
from zhongtai.core.settings import Settings
from zhongtai.members import service
from zhongtai.members.hooks import member_subject
from zhongtai.members.models import ConsentChannel
from zhongtai.members.overview import member_overview
from zhongtai.members.pii import PiiCipher, cipher_for
from zhongtai.members.profile import MemberView
from zhongtai.members.schemas import (
    ConsentIn,
    ConsentOut,
    IdentifyIn,
    IdentifyOut,
    IdentityIn,
    IdentityOut,
    MemberOut,
    MemberOverviewOut,
    MergeIn,
    MergeOut,
    ProfileIn,
)

router = api_router(tags=["members"])


def pii_cipher(settings: Settings = Depends(app_settings)) -> PiiCipher:
    return cipher_for(settings)


def touchpoint(principal: Principal) -> str:
    """Where a registration or consent came from: the channel, or the staff member's role."""
    if principal.channel is not None:
        return principal.channel.value
    return principal.role.value if principal.role else principal.kind


def _out(
    session: Session, cipher: PiiCipher, member_id: uuid.UUID, *, may_see_pii: bool = False
) -> MemberOut:
    """The member as answered. Changes always answer masked, so that no phone in clear ever
    lands in the stored Idempotency-Key replays; whole values are for GET and export only."""
    return _member_out(service.describe_member(session, cipher, member_id, may_see_pii=may_see_pii))


def _hers(request: Request, member_id: uuid.UUID) -> None:
    """The answer holds her data: a stored Idempotency-Key replay of it goes with her erasure."""
    replay_concerns(request, member_subject(member_id))


def _member_out(view: MemberView) -> MemberOut:
    m = view.member
    return MemberOut(
        id=m.id,
        status=m.status,
        name=m.name,
        birthday=m.birthday,
        preferred_store_id=m.preferred_store_id,
        preferences=m.preferences,
        tags=m.tags,
        registered_via=m.registered_via,
        registered_store_id=m.registered_store_id,
        created_at=m.created_at,
        identities=[
            IdentityOut(kind=i.kind, value=i.value, masked=i.masked) for i in view.identities
        ],
        consents=[ConsentOut(**c.__dict__) for c in view.consents],
    )


@router.post("/members/identify", response_model=IdentifyOut)
def identify_member(
    body: IdentifyIn,
    request: Request,
    response: Response,
    principal: Principal = Depends(require(Permission.MEMBERS_WRITE)),
    cipher: PiiCipher = Depends(pii_cipher),
    session: Session = Depends(db_session),
) -> IdentifyOut:
    """Find the member by any identity (phone, openid, POS card, ...), creating her on first
    sight (201). Racing touchpoints meeting the same new phone get one member."""
    if body.store_id is not None:
        principal.ensure_store(body.store_id)
    if not body.create:
        found = service.find_member_id(session, cipher, body.kind, body.value)
        if found is None:
            raise NotFound("No member has this identity.", kind=body.kind.value)
        _hers(request, found)
        return IdentifyOut(created=False, member=_out(session, cipher, found))
    member, created = service.find_or_create_member(
        session,
        cipher,
        body.kind,
        body.value,
        via=touchpoint(principal),
        store_id=body.store_id,
        name=body.name,
        birthday=body.birthday,
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    _hers(request, member.id)
    return IdentifyOut(created=created, member=_out(session, cipher, member.id))


@router.get("/members/{member_id}", response_model=MemberOut)
def get_member(
    member_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.MEMBERS_READ)),
    cipher: PiiCipher = Depends(pii_cipher),
    session: Session = Depends(db_session),
) -> MemberOut:
    """The member (a merged member's id answers her survivor); phones masked unless the caller
    holds members:pii."""
    return _out(session, cipher, member_id, may_see_pii=principal.can(Permission.MEMBERS_PII))


@router.get("/members/{member_id}/overview", response_model=MemberOverviewOut)
def get_member_overview(
    member_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.MEMBERS_READ)),
    cipher: PiiCipher = Depends(pii_cipher),
    session: Session = Depends(db_session),
) -> MemberOverviewOut:
    """The member 360: her profile, identities and consents (masked exactly as GET
    /members/{id}), orders of every channel, points, coupons, her guide (and, once the feedback
    context registers it, her after-sales cases and NPS). Readable by whoever may read the
    member; a merged member's id answers her survivor's overview."""
    overview = member_overview(
        session,
        cipher,
        member_id,
        may_see_pii=principal.can(Permission.MEMBERS_PII),
        now=utcnow(),
    )
    return MemberOverviewOut.model_validate(
        {
            "member": _member_out(overview.view),
            "merged_member_ids": overview.merged_member_ids,
            **overview.sections,
        }
    )


@router.patch("/members/{member_id}", response_model=MemberOut)
def update_profile(
    member_id: uuid.UUID,
    body: ProfileIn,
    request: Request,
    principal: Principal = Depends(require(Permission.MEMBERS_WRITE)),
    cipher: PiiCipher = Depends(pii_cipher),
    session: Session = Depends(db_session),
) -> MemberOut:
    """Change name, birthday, preferred store, sizes/preferences or tags (fields sent only)."""
    member = service.update_profile(session, member_id, **body.model_dump(exclude_unset=True))
    _hers(request, member.id)
    return _out(session, cipher, member.id)


@router.post("/members/{member_id}/identities", response_model=MemberOut)
def link_identity(
    member_id: uuid.UUID,
    body: IdentityIn,
    request: Request,
    principal: Principal = Depends(require(Permission.MEMBERS_WRITE)),
    cipher: PiiCipher = Depends(pii_cipher),
    session: Session = Depends(db_session),
) -> MemberOut:
    """Let one more identity find her; another member's identity is 409 identity-taken."""
    member = service.link_identity(session, cipher, member_id, body.kind, body.value)
    _hers(request, member.id)
    return _out(session, cipher, member.id)


@router.put("/members/{member_id}/consents/{channel}", response_model=ConsentOut)
def set_consent(
    member_id: uuid.UUID,
    channel: ConsentChannel,
    body: ConsentIn,
    request: Request,
    principal: Principal = Depends(require(Permission.MEMBERS_WRITE)),
    session: Session = Depends(db_session),
) -> ConsentOut:
    """Record her marketing consent for sms, wecom or app_push, with time and touchpoint."""
    consent = service.set_consent(
        session, member_id, channel, granted=body.granted, source=touchpoint(principal)
    )
    _hers(request, member_id)
    return ConsentOut(**consent.__dict__)


@router.get("/members/{member_id}/export")
def export_member(
    member_id: uuid.UUID,
    _: Principal = Depends(require(Permission.MEMBERS_PII)),
    cipher: PiiCipher = Depends(pii_cipher),
    session: Session = Depends(db_session),
) -> dict[str, Any]:
    """Everything held about her, in clear (her right of access): profile, identities,
    consent history, merges, points, orders."""
    return service.export_member(session, cipher, member_id)


@router.post("/members/{member_id}/erase", response_model=MemberOut)
def erase_member(
    member_id: uuid.UUID,
    principal: Principal = Depends(require(Permission.MEMBERS_ADMIN)),
    cipher: PiiCipher = Depends(pii_cipher),
    session: Session = Depends(db_session),
) -> MemberOut:
    """Forget her: identities and profile deleted, her id kept as a pseudonym for the books."""
    member = service.erase_member(session, member_id)
    return _out(session, cipher, member.id)


@router.post("/members/{member_id}/merge", response_model=MergeOut)
def merge_members(
    member_id: uuid.UUID,
    body: MergeIn,
    _: Principal = Depends(require(Permission.MEMBERS_ADMIN)),
    session: Session = Depends(db_session),
) -> MergeOut:
    """Merge a duplicate into this member: identities, consents, points, coupons, her guide
    binding and her orders move here, each named in the trace (``moved``); the duplicate's id
    keeps finding her. Repeating the merge answers the first one."""
    trace = service.merge_members(session, member_id, body.merged_member_id)
    return MergeOut(
        merge_id=trace.id,
        survivor_id=trace.survivor_id,
        merged_id=trace.merged_id,
        merged_at=trace.merged_at,
        moved=trace.moved,
    )
