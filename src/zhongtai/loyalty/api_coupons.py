"""HTTP endpoints of coupons: templates (HQ), issuing and claiming, a member's coupons, and
using one at any touchpoint — lock, release, redeem."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import Depends, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params, paginate
from zhongtai.loyalty import coupon_use, coupons
from zhongtai.loyalty.accounts import Source
from zhongtai.loyalty.api_promotions import MANAGE_OFFERS
from zhongtai.loyalty.coupon_rules import CouponTerms
from zhongtai.loyalty.models import Coupon, CouponStatus, SourceType
from zhongtai.loyalty.offer_schemas import (
    ClaimIn,
    CouponOut,
    CouponTemplateIn,
    CouponTemplateOut,
    IssueIn,
    LockIn,
    RedeemCouponIn,
    ReleasedOut,
    ReleaseIn,
)
from zhongtai.members import service as members

router = api_router(tags=["coupons"])
MEMBER = "/members/{member_id}/coupons"


@router.post(
    "/coupon-templates", response_model=CouponTemplateOut, status_code=status.HTTP_201_CREATED
)
def create_coupon_template(
    body: CouponTemplateIn,
    _: Principal = Depends(require(MANAGE_OFFERS)),
    session: Session = Depends(db_session),
) -> CouponTemplateOut:
    """A kind of coupon: what it gives, where, for how long, what it combines with, how many."""
    until = body.valid_until
    if until is not None and until.utcoffset() is not None and until <= utcnow():
        # Its coupons could never be given out (a date without an offset is refused below).
        raise InvalidInput.field("valid_until", "must be in the future")
    template = coupons.create_template(
        session,
        code=body.code,
        name=body.name,
        terms=CouponTerms(
            body.kind, body.value, body.threshold_fen, body.cap_fen, body.gift_sku_id
        ),
        valid_days=body.valid_days,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        rules=coupons.TemplateRules(
            scope=body.scope.rule(),
            stacks_with_promotions=body.stacks_with_promotions,
            stacks_with_coupons=body.stacks_with_coupons,
            restore_on_full_return=body.restore_on_full_return,
            claim_code=body.claim_code,
        ),
        total_limit=body.total_limit,
        per_member_limit=body.per_member_limit,
    )
    return CouponTemplateOut.model_validate(template)


@router.get("/coupon-templates/{template_id}", response_model=CouponTemplateOut)
def get_coupon_template(
    template_id: uuid.UUID,
    _: Principal = Depends(require(Permission.POINTS_READ)),
    session: Session = Depends(db_session),
) -> CouponTemplateOut:
    return CouponTemplateOut.model_validate(coupons.get_template(session, template_id))


@router.post("/coupon-templates/{template_id}/pause", response_model=CouponTemplateOut)
def pause_coupon_template(
    template_id: uuid.UUID,
    _: Principal = Depends(require(MANAGE_OFFERS)),
    session: Session = Depends(db_session),
) -> CouponTemplateOut:
    """Stop giving out the template's coupons; those already held stay usable."""
    return CouponTemplateOut.model_validate(
        coupons.set_template_active(session, template_id, False)
    )


@router.post(
    "/coupon-templates/{template_id}/issue",
    response_model=CouponOut,
    status_code=status.HTTP_201_CREATED,
)
def issue_coupon(
    template_id: uuid.UUID,
    body: IssueIn,
    _: Principal = Depends(require(MANAGE_OFFERS)),
    session: Session = Depends(db_session),
) -> CouponOut:
    """Give a member a coupon (campaign, signup, tier upgrade, a guide's gift); 409
    coupon-limit-reached beyond the template's total or her limit."""
    coupon = coupons.issue_coupon(session, template_id, body.member_id, via=body.via)
    return CouponOut.model_validate(coupon)


@router.post(f"{MEMBER}/claim", response_model=CouponOut, status_code=status.HTTP_201_CREATED)
def claim_coupon(
    member_id: uuid.UUID,
    body: ClaimIn,
    _: Principal = Depends(require(Permission.POINTS_WRITE)),
    session: Session = Depends(db_session),
) -> CouponOut:
    """She claims a coupon with a code; the total and her limit hold however many claim at
    once (409 coupon-limit-reached)."""
    return CouponOut.model_validate(coupons.claim_coupon(session, body.claim_code, member_id))


@router.get(MEMBER, response_model=Page[CouponOut])
def member_coupons(
    member_id: uuid.UUID,
    status_: CouponStatus | None = Query(default=None, alias="status"),
    _: Principal = Depends(require(Permission.POINTS_READ)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[CouponOut]:
    """Her coupons (members merged into her included), newest first by id."""
    member = members.get_member(session, member_id)
    stmt = select(Coupon).where(Coupon.member_id.in_(members.member_ids_of(session, member.id)))
    if status_ is not None:
        stmt = stmt.where(Coupon.status == status_)
    rows, cursor = paginate(session, stmt, [Coupon.id], page)
    return Page(items=[CouponOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(f"{MEMBER}/{{coupon_id}}/lock", response_model=CouponOut)
def lock_coupon(
    member_id: uuid.UUID,
    coupon_id: uuid.UUID,
    body: LockIn,
    _: Principal = Depends(require(Permission.POINTS_WRITE)),
    session: Session = Depends(db_session),
) -> CouponOut:
    """Hold her coupon for a checkout until it is paid or the hold ends; 409
    coupon-not-redeemable when it is used, expired or held by another checkout."""
    coupon = coupon_use.lock_coupon(
        session,
        coupon_id,
        body.reference,
        member_id=member_id,
        hold=timedelta(seconds=body.hold_seconds),
    )
    return CouponOut.model_validate(coupon)


@router.post("/coupons/release", response_model=ReleasedOut)
def release_coupons(
    body: ReleaseIn,
    _: Principal = Depends(require(Permission.POINTS_WRITE)),
    session: Session = Depends(db_session),
) -> ReleasedOut:
    """Give back every coupon a checkout holds (cancelled or abandoned)."""
    return ReleasedOut(released=coupon_use.release_coupons(session, body.reference))


@router.post(f"{MEMBER}/{{coupon_id}}/redeem", response_model=CouponOut)
def redeem_coupon(
    member_id: uuid.UUID,
    coupon_id: uuid.UUID,
    body: RedeemCouponIn,
    response: Response,
    _: Principal = Depends(require(Permission.POINTS_WRITE)),
    session: Session = Depends(db_session),
) -> CouponOut:
    """Use her coupon for an order or sale, once, at whichever touchpoint comes first: 409
    coupon-not-redeemable for every later one. A replay of the same order answers 200."""
    source = Source(SourceType(body.source_type.value), body.source_id)
    before = coupon_use.get_coupon(session, coupon_id)
    replay = (before.redeemed_source_type, before.redeemed_source_id) == (source.type, source.id)
    coupon = coupon_use.redeem_coupon(
        session,
        coupon_id,
        source,
        order_fen=body.order_fen,
        discount_fen=body.discount_fen,
        reference=body.reference,
        member_id=member_id,
    )
    response.status_code = status.HTTP_200_OK if replay else status.HTTP_201_CREATED
    return CouponOut.model_validate(coupon)
