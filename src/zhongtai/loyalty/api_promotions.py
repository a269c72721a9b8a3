"""HTTP endpoints of promotions (HQ runs them) and of pricing a basket with its offers."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import Depends, Query, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.clock import utcnow
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params
from zhongtai.loyalty import offers, promotions
from zhongtai.loyalty.offer_schemas import (
    DiscountOut,
    ExplanationOut,
    GiftOut,
    PriceBasketIn,
    PricedBasketOut,
    PricedLineOut,
    PromotionIn,
    PromotionOut,
    ShareOut,
)
from zhongtai.orders.pricing_rules import BasketLine

router = api_router(tags=["promotions"])

#: Promotions and coupon campaigns are HQ marketing's to set up.
MANAGE_OFFERS = Permission.OFFERS_MANAGE


def _definition(body: PromotionIn) -> promotions.PromotionDefinition:
    return promotions.PromotionDefinition(
        code=body.code,
        name=body.name,
        kind=body.kind,
        terms=body.terms.model_dump(exclude_none=True, mode="json"),
        scope=body.scope.rule(),
        priority=body.priority,
        exclusive=body.exclusive,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        active=body.active,
    )


@router.post("/promotions", response_model=PromotionOut, status_code=status.HTTP_201_CREATED)
def create_promotion(
    body: PromotionIn,
    _: Principal = Depends(require(MANAGE_OFFERS)),
    session: Session = Depends(db_session),
) -> PromotionOut:
    """Start an automatic promotion: every basket in its scope and window gets it, no code."""
    row = promotions.create_promotion(session, _definition(body))
    return PromotionOut.model_validate(row)


@router.get("/promotions", response_model=Page[PromotionOut])
def list_promotions(
    live_at: datetime | None = Query(default=None, description="Only those running then."),
    _: Principal = Depends(require(Permission.POINTS_READ)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[PromotionOut]:
    rows, cursor = promotions.list_promotions(session, page, live_at=live_at)
    return Page(items=[PromotionOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/promotions/{promotion_id}", response_model=PromotionOut)
def get_promotion(
    promotion_id: uuid.UUID,
    _: Principal = Depends(require(Permission.POINTS_READ)),
    session: Session = Depends(db_session),
) -> PromotionOut:
    return PromotionOut.model_validate(promotions.get_promotion(session, promotion_id))


@router.put("/promotions/{promotion_id}", response_model=PromotionOut)
def replace_promotion(
    promotion_id: uuid.UUID,
    body: PromotionIn,
    _: Principal = Depends(require(MANAGE_OFFERS)),
    session: Session = Depends(db_session),
) -> PromotionOut:
    """Change the promotion as a whole (``active: false`` pauses it). Orders already priced
    keep what they got."""
    row = promotions.replace_promotion(session, promotion_id, _definition(body))
    return PromotionOut.model_validate(row)


@router.post("/offers/price", response_model=PricedBasketOut)
def price_basket_with_offers(
    body: PriceBasketIn,
    principal: Principal = Depends(require(Permission.POINTS_READ)),
    session: Session = Depends(db_session),
) -> PricedBasketOut:
    """What a basket costs with every promotion it earns and the coupons presented, each
    discount spread over its lines, and why every offer did or did not apply. Changes nothing:
    the checkout locks the coupons it uses."""
    if body.store_id is not None:
        principal.ensure_store(body.store_id)
    priced = offers.offers_for_basket(
        session,
        [BasketLine(x.sku_id, x.unit_price, x.price_per, x.quantity, x.kind) for x in body.lines],
        channel=body.channel.value,
        store_id=body.store_id,
        now=utcnow(),
        member_id=body.member_id,
        coupon_ids=body.coupon_ids,
    )
    basket = priced.basket
    return PricedBasketOut(
        subtotal=basket.subtotal,
        discount_total=basket.discount_total,
        total=basket.subtotal - basket.discount_total,
        lines=[
            PricedLineOut(
                amount=ln.amount,
                discount=ln.discount,
                net=ln.net,
                discounts=[ShareOut(source=s.source, amount=s.amount) for s in ln.discounts],
            )
            for ln in basket.lines
        ],
        discounts=[
            DiscountOut(
                source=d.source,
                amount=d.amount,
                line_indexes=None if d.line_indexes is None else list(d.line_indexes),
            )
            for d in priced.discounts
        ],
        explanations=[
            ExplanationOut(
                source=e.source,
                name=e.name,
                applied=e.applied,
                reason=e.reason,
                sentence=e.sentence,
                amount=e.amount,
                line_indexes=list(e.line_indexes),
            )
            for e in priced.explanations
        ],
        coupons_used=list(priced.coupons_used),
        free_delivery=priced.free_delivery,
        gift_sku_ids=list(priced.gift_sku_ids),
        gifts=[
            GiftOut(source=g.source, sku_id=g.sku_id, quantity=g.quantity) for g in priced.gifts
        ],
    )
