"""Coupons: templates, issuing within limits, and redemption once, whichever touchpoint first."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.core.outbox import record_event
from zhongtai.core.unique import added, write_unique
from zhongtai.loyalty.accounts import Source
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms, coupon_discount
from zhongtai.loyalty.errors import CouponLimitReached, CouponNotRedeemable
from zhongtai.loyalty.events import CouponIssued, CouponRedeemed
from zhongtai.loyalty.models import Coupon, CouponStatus, CouponTemplate
from zhongtai.members import service as members


def create_template(
    session: Session,
    *,
    code: str,
    name: str,
    terms: CouponTerms,
    valid_days: int,
    total_limit: int | None = None,
    per_member_limit: int = 1,
) -> CouponTemplate:
    if terms.kind is CouponKind.PERCENT_OFF and not 0 < terms.value <= 100:
        raise InvalidInput.field("value", "a percentage from 1 to 100")
    template = CouponTemplate(
        code=code,
        name=name,
        kind=terms.kind,
        value=terms.value,
        threshold_fen=terms.threshold_fen,
        cap_fen=terms.cap_fen,
        valid_days=valid_days,
        total_limit=total_limit,
        per_member_limit=per_member_limit,
        issued=0,
    )
    return write_unique(
        session,
        lambda: added(session, template),
        lambda: AlreadyExists(f"Coupon template {code!r} exists.", code=code),
    )


def issue_coupon(
    session: Session, template_id: uuid.UUID, member_id: uuid.UUID, *, at: datetime | None = None
) -> Coupon:
    """Give the member a coupon of the template, within both limits even under a rush: the
    member's lock keeps her count, a conditional update keeps the template's total."""
    at = at or utcnow()
    member = members.lock_member(session, member_id)
    template = session.get(CouponTemplate, template_id)
    if template is None:
        raise NotFound(f"No coupon template {template_id}.")
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
        issued_at=at,
        expires_at=at + timedelta(days=template.valid_days),
    )
    session.add(coupon)
    session.flush()
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


def redeem_coupon(
    session: Session,
    coupon_id: uuid.UUID,
    source: Source,
    *,
    order_fen: int,
    at: datetime | None = None,
) -> Coupon:
    """Use the coupon for a sale or order: one conditional update decides, so of two
    touchpoints racing for it one wins and the other gets 409. A replay by the winning source
    answers the redemption again."""
    at = at or utcnow()
    coupon = session.get(Coupon, coupon_id)
    if coupon is None:
        raise NotFound(f"No coupon {coupon_id}.")
    template = session.get(CouponTemplate, coupon.template_id)
    assert template is not None
    terms = CouponTerms(template.kind, template.value, template.threshold_fen, template.cap_fen)
    discount = coupon_discount(terms, order_fen)
    if discount == 0:
        raise InvalidInput.field(
            "order_fen", f"the order does not reach the coupon's threshold ({terms.threshold_fen})"
        )
    won = session.execute(
        update(Coupon)
        .where(
            Coupon.id == coupon_id,
            Coupon.status == CouponStatus.AVAILABLE,
            Coupon.expires_at > at,
        )
        .values(
            status=CouponStatus.REDEEMED,
            redeemed_at=at,
            redeemed_source_type=source.type,
            redeemed_source_id=source.id,
            discount_fen=discount,
        )
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(coupon)
    if won != 1:
        if (coupon.redeemed_source_type, coupon.redeemed_source_id) == (source.type, source.id):
            return coupon
        reason = "was already used" if coupon.status is CouponStatus.REDEEMED else "has expired"
        raise CouponNotRedeemable(f"Coupon {coupon_id} {reason}.", coupon_id=str(coupon_id))
    record_event(
        session,
        CouponRedeemed(
            coupon_id=coupon.id,
            member_id=coupon.member_id,
            source_type=source.type.value,
            source_id=source.id,
            discount_fen=discount,
        ),
        aggregate_type="member",
        aggregate_id=coupon.member_id,
    )
    return coupon
