"""Offers for a basket: the live promotions and the shopper's coupons, priced in few statements."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.categories import sku_category_lineages
from zhongtai.core.errors import InvalidInput
from zhongtai.loyalty.coupon_rules import CouponOffer, CouponTerms
from zhongtai.loyalty.models import (
    Coupon,
    CouponTemplate,
    EntryKind,
    MemberTier,
    PointsEntry,
    SourceType,
)
from zhongtai.loyalty.offer_pricing import PricedOffers, price_with_offers
from zhongtai.loyalty.promotion_rules import OfferContext, OfferLine
from zhongtai.loyalty.promotions import live_promotions
from zhongtai.loyalty.scopes import scope_from_json
from zhongtai.loyalty.tier_rules import Tier
from zhongtai.members import service as members
from zhongtai.members.errors import MemberErased
from zhongtai.members.models import MemberStatus
from zhongtai.orders.pricing_rules import BasketLine, DeliveryFeeRule

MAX_COUPONS = 5


def category_lineages(
    session: Session, sku_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, ...]]:
    """Each SKU's category and all its ancestors, nearest first, in one statement."""
    return {sku: tuple(c) for sku, c in sku_category_lineages(session, sku_ids).items()}


def shopper_context(
    session: Session,
    *,
    channel: str,
    store_id: uuid.UUID | None,
    member_id: uuid.UUID | None,
    now: datetime,
) -> OfferContext:
    """The shopper as offers see her: her tier, and whether she is new (never earned from a
    purchase yet, so 新人 offers reach her first order wherever she places it; a signup bonus
    or a campaign gift does not make her a customer)."""
    if member_id is None:
        return OfferContext(channel=channel, store_id=store_id, now=now)
    ids = members.member_ids_of(session, member_id)
    tier = session.scalar(select(MemberTier.tier).where(MemberTier.member_id == member_id))
    bought = session.scalar(
        select(PointsEntry.id)
        .where(
            PointsEntry.member_id.in_(ids),
            PointsEntry.kind == EntryKind.EARN,
            PointsEntry.source_type.in_([SourceType.ORDER, SourceType.POS_SALE]),
        )
        .limit(1)
    )
    return OfferContext(
        channel=channel,
        store_id=store_id,
        now=now,
        tier=(tier or Tier.STANDARD).value,
        new_member=bought is None,
    )


def coupon_offers(
    session: Session, member_id: uuid.UUID | None, coupon_ids: Sequence[uuid.UUID]
) -> list[CouponOffer]:
    """The member's coupons she presents, with their templates' rules, in the order given.

    A coupon not hers, or unknown, is 422 naming it: the shopper must take it off the basket.
    Whether it is still usable (used, expired, held) is the lock's and redemption's business.
    """
    if not coupon_ids:
        return []
    if member_id is None:
        raise InvalidInput.field("coupon_ids", "coupons are a member's: identify the member")
    if len(coupon_ids) > MAX_COUPONS:
        raise InvalidInput.field("coupon_ids", f"at most {MAX_COUPONS} coupons on one basket")
    ids = members.member_ids_of(session, member_id)
    rows = {
        coupon.id: (coupon, template)
        for coupon, template in session.execute(
            select(Coupon, CouponTemplate)
            .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
            .where(Coupon.id.in_(set(coupon_ids)), Coupon.member_id.in_(ids))
        )
    }
    offers = []
    for n, coupon_id in enumerate(dict.fromkeys(coupon_ids)):
        if coupon_id not in rows:
            raise InvalidInput.field(f"coupon_ids[{n}]", "not a coupon of this member")
        coupon, template = rows[coupon_id]
        offers.append(
            CouponOffer(
                coupon_id=str(coupon.id),
                name=template.name,
                terms=CouponTerms(
                    template.kind,
                    template.value,
                    template.threshold_fen,
                    template.cap_fen,
                    template.gift_sku_id,
                ),
                scope=scope_from_json(template.scope),
                starts_at=coupon.starts_at,
                ends_at=coupon.expires_at,
                stacks_with_promotions=template.stacks_with_promotions,
                stacks_with_coupons=template.stacks_with_coupons,
            )
        )
    return offers


def offers_for_basket(
    session: Session,
    lines: Sequence[BasketLine],
    *,
    channel: str,
    store_id: uuid.UUID | None,
    now: datetime,
    member_id: uuid.UUID | None = None,
    coupon_ids: Sequence[uuid.UUID] = (),
    delivery_fee_rule: DeliveryFeeRule | None = None,
    reference_generation: int | None = None,
) -> PricedOffers:
    """Price the basket with every live promotion it earns and the coupons presented.

    Given the ``reference_generation`` the caller read (a checkout's sourcing did), the live
    promotions this process read at that generation are used rather than read again.

    A handful of statements whatever the basket's size: live promotions, the SKUs' category
    lineage (only when an offer is scoped to categories), who she is now (after merges), her
    tier, whether she is new, her coupons.
    ``.discounts`` are what the checkout passes to ``orders.pricing_rules.price_basket`` (same
    order); ``.explanations`` say why each offer did or did not apply; ``.coupons_used`` are
    the coupons to lock.

    A member who was erased is nobody to sell to: 409 ``member-erased``, judged on the member
    row read here anyway (so a checkout refuses her before it holds or locks anything).
    """
    if member_id is not None:
        # The survivor of any merge, her row key-shared before the checkout holds any stock.
        member = members.get_member(session, member_id, key_share=True)
        if member.status is MemberStatus.ERASED:
            raise MemberErased(member.id)
        member_id = member.id
    promotions = live_promotions(session, now, generation=reference_generation)
    coupons = coupon_offers(session, member_id, coupon_ids)
    # Only an offer scoped to categories looks at them: without one, none is read.
    by_category = any(p.scope.category_ids for p in promotions) or any(
        c.scope.category_ids for c in coupons
    )
    sku_ids = [ln.sku_id for ln in lines if ln.sku_id is not None]
    lineages = category_lineages(session, sku_ids) if by_category else {}
    offer_lines = [
        OfferLine(
            ln.sku_id,
            lineages.get(ln.sku_id, ()) if ln.sku_id is not None else (),
            ln.unit_price,
            ln.price_per,
            ln.quantity,
            ln.kind,
        )
        for ln in lines
    ]
    context = shopper_context(
        session, channel=channel, store_id=store_id, member_id=member_id, now=now
    )
    return price_with_offers(
        offer_lines, promotions, context, coupons=coupons, delivery_fee_rule=delivery_fee_rule
    )
