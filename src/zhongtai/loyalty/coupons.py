"""Coupon templates and issuing: to a member (campaign, signup, tier, guide) or claimed with a
code, within the template's total and the member's limit even under a rush."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.core.outbox import record_event
from zhongtai.core.unique import added, write_unique
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms, Validity
from zhongtai.loyalty.errors import CouponLimitReached, CouponTemplateClosed
from zhongtai.loyalty.events import CouponIssued
from zhongtai.loyalty.models import Coupon, CouponAction, CouponStatus, CouponTemplate, CouponUse
from zhongtai.loyalty.promotion_rules import Scope
from zhongtai.loyalty.scopes import scope_to_json
from zhongtai.members import service as members

ISSUED_VIA = frozenset({"campaign", "signup", "tier_upgrade", "guide", "claim", "segment"})


@dataclass(frozen=True)
class TemplateRules:
    """Where and how a template's coupons are used, besides what they give."""

    scope: Scope = field(default_factory=Scope)
    stacks_with_promotions: bool = True
    stacks_with_coupons: bool = False
    restore_on_full_return: bool = True
    claim_code: str | None = None


def check_terms(terms: CouponTerms, validity: Validity) -> None:
    """Refuse terms that cannot make a sensible coupon, naming the field."""
    for name, moment in (("valid_from", validity.starts_at), ("valid_until", validity.ends_at)):
        # A date without an offset is a guess eight hours wide (UTC or Beijing?): ask.
        if moment is not None and moment.utcoffset() is None:
            raise InvalidInput.field(name, "give a time zone offset, e.g. +08:00 or Z")
    if terms.kind is CouponKind.PERCENT_OFF and not 0 < terms.value <= 100:
        raise InvalidInput.field("value", "a percentage from 1 to 100")
    if terms.kind is not CouponKind.FREE_DELIVERY and terms.value <= 0:
        raise InvalidInput.field("value", "must be 1 or more")
    if terms.kind is CouponKind.GIFT_ITEM and terms.gift_sku_id is None:
        raise InvalidInput.field("gift_sku_id", "a gift coupon names the SKU it gives")
    if terms.threshold_fen < 0:
        raise InvalidInput.field("threshold_fen", "must be 0 or more")
    if terms.cap_fen is not None and terms.cap_fen <= 0:
        raise InvalidInput.field("cap_fen", "must be 1 or more (or none)")
    if validity.days is None and validity.ends_at is None:
        raise InvalidInput.field("valid_days", "give valid_days or valid_until: coupons expire")
    if validity.days is not None and validity.days <= 0:
        raise InvalidInput.field("valid_days", "must be 1 or more")
    if validity.starts_at and validity.ends_at and validity.ends_at <= validity.starts_at:
        raise InvalidInput.field("valid_until", "must be after valid_from")


def create_template(
    session: Session,
    *,
    code: str,
    name: str,
    terms: CouponTerms,
    valid_days: int | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    rules: TemplateRules | None = None,
    total_limit: int | None = None,
    per_member_limit: int = 1,
) -> CouponTemplate:
    rules = rules or TemplateRules()
    check_terms(terms, Validity(valid_from, valid_until, valid_days))
    if total_limit is not None and total_limit <= 0:
        raise InvalidInput.field("total_limit", "must be 1 or more (or none: unlimited)")
    if per_member_limit <= 0:
        raise InvalidInput.field("per_member_limit", "must be 1 or more")
    claim_code = rules.claim_code.upper() if rules.claim_code else None
    template = CouponTemplate(
        code=code,
        name=name,
        kind=terms.kind,
        value=terms.value,
        threshold_fen=terms.threshold_fen,
        cap_fen=terms.cap_fen,
        gift_sku_id=terms.gift_sku_id,
        scope=scope_to_json(rules.scope),
        valid_from=valid_from,
        valid_until=valid_until,
        valid_days=valid_days,
        stacks_with_promotions=rules.stacks_with_promotions,
        stacks_with_coupons=rules.stacks_with_coupons,
        restore_on_full_return=rules.restore_on_full_return,
        claim_code=claim_code,
        total_limit=total_limit,
        per_member_limit=per_member_limit,
        issued=0,
        active=True,
    )

    def taken() -> AlreadyExists:
        if session.scalar(select(CouponTemplate.id).where(CouponTemplate.code == code)):
            return AlreadyExists(f"Coupon template {code!r} exists.", code=code)
        return AlreadyExists(f"Claim code {claim_code!r} is taken.", claim_code=claim_code)

    return write_unique(session, lambda: added(session, template), taken)


def get_template(session: Session, template_id: uuid.UUID) -> CouponTemplate:
    template = session.get(CouponTemplate, template_id)
    if template is None:
        raise NotFound(f"No coupon template {template_id}.", template_id=str(template_id))
    return template


def set_template_active(session: Session, template_id: uuid.UUID, active: bool) -> CouponTemplate:
    """Pause (or resume) giving out a template's coupons; coupons already held stay usable."""
    template = get_template(session, template_id)
    template.active = active
    session.flush()
    return template


def validity(template: CouponTemplate) -> Validity:
    return Validity(template.valid_from, template.valid_until, template.valid_days)


def issue_coupon(
    session: Session,
    template_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    at: datetime | None = None,
    via: str = "campaign",
) -> Coupon:
    """Give the member a coupon of the template, within both limits even under a rush: the
    member's lock keeps her count, a conditional update keeps the template's total."""
    at = at or utcnow()
    if via not in ISSUED_VIA:
        raise InvalidInput.field("via", f"one of {', '.join(sorted(ISSUED_VIA))}")
    member = members.lock_member(session, member_id)
    template = get_template(session, template_id)
    starts_at, expires_at = validity(template).window(at)
    if not template.active or expires_at is None or expires_at <= at:
        raise CouponTemplateClosed(
            f"Coupons of {template.code!r} are no longer given out.", template_id=str(template_id)
        )
    held = session.scalar(
        select(func.count()).where(
            Coupon.template_id == template_id,
            Coupon.member_id.in_(members.member_ids_of(session, member.id)),
        )
    )
    if (held or 0) >= template.per_member_limit:
        raise CouponLimitReached(
            f"The member already holds {held} of {template.code!r} (limit "
            f"{template.per_member_limit})."
        )
    claimed = session.execute(
        update(CouponTemplate)
        .where(
            CouponTemplate.id == template_id,
            or_(
                CouponTemplate.total_limit.is_(None),
                CouponTemplate.issued < CouponTemplate.total_limit,
            ),
        )
        .values(issued=CouponTemplate.issued + 1)
    ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        raise CouponLimitReached(
            f"All {template.total_limit} coupons of {template.code!r} are issued."
        )
    coupon = Coupon(
        template_id=template_id,
        member_id=member.id,
        status=CouponStatus.AVAILABLE,
        issued_via=via,
        issued_at=at,
        starts_at=starts_at if starts_at > at else None,
        expires_at=expires_at,
    )
    session.add(coupon)
    session.flush()
    note_use(session, coupon.id, CouponAction.ISSUE, via, at=at)
    record_event(
        session,
        CouponIssued(
            coupon_id=coupon.id,
            template_id=template_id,
            member_id=member.id,
            expires_at=coupon.expires_at,
        ),
        aggregate_type="member",
        aggregate_id=member.id,
    )
    return coupon


def claim_coupon(
    session: Session, claim_code: str, member_id: uuid.UUID, *, at: datetime | None = None
) -> Coupon:
    """The member claims a coupon with the code she saw (poster, live stream, guide's share)."""
    template_id = session.scalar(
        select(CouponTemplate.id).where(CouponTemplate.claim_code == claim_code.strip().upper())
    )
    if template_id is None:
        raise NotFound(f"No coupon can be claimed with {claim_code!r}.", claim_code=claim_code)
    return issue_coupon(session, template_id, member_id, at=at, via="claim")


def note_use(
    session: Session,
    coupon_id: uuid.UUID,
    action: CouponAction,
    reference: str | None,
    *,
    at: datetime,
    discount_fen: int | None = None,
) -> None:
    session.add(
        CouponUse(
            coupon_id=coupon_id,
            action=action,
            reference=reference,
            discount_fen=discount_fen,
            occurred_at=at,
            actor=context.actor.get(),
        )
    )


def coupon_kinds(session: Session, coupon_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, CouponKind]:
    """The kind of each of these coupons (by its template), in one read."""
    wanted = set(coupon_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(Coupon.id, CouponTemplate.kind)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.id.in_(wanted))
    )
    return {coupon_id: kind for coupon_id, kind in rows}
