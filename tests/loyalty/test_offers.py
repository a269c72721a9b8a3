"""Offers for a stored basket: live promotions by category tree, tier and first purchase, and
the member's own coupons."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.members.conftest import MakeMember
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.loyalty import coupons, service
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import SourceType
from zhongtai.loyalty.promotion_rules import PromotionKind, Reason, Scope
from zhongtai.orders.pricing_rules import BasketLine


def _promotion(session: Session, code: str, kind: PromotionKind, terms: dict, **kw: object):  # type: ignore[no-untyped-def, type-arg]
    return service.create_promotion(
        session,
        service.PromotionDefinition(
            code=code, name=code, kind=kind, terms=terms, scope=kw.pop("scope", Scope()), **kw
        ),  # type: ignore[arg-type]
    )


def test_a_promotion_on_a_parent_category_covers_goods_of_its_subcategories(
    session: Session, catalog: CatalogFactory
) -> None:
    food = catalog.category()
    dairy = catalog.category(parent=food)
    milk = catalog.product(category=dairy).skus[0]
    other = catalog.sku()
    _promotion(
        session,
        "FOOD10",
        PromotionKind.PERCENT_OFF,
        {"percent": 10},
        scope=Scope(category_ids=frozenset({food.id})),
    )
    priced = service.offers_for_basket(
        session,
        [BasketLine(milk.id, 1_000, 1, 1), BasketLine(other.id, 1_000, 1, 1)],
        channel="app",
        store_id=None,
        now=utcnow(),
    )
    assert [(d.amount, d.line_indexes) for d in priced.discounts] == [(100, (0,))]


def test_a_first_purchase_offer_reaches_new_members_only_and_a_promotion_outside_its_window_nobody(
    session: Session, catalog: CatalogFactory, make_member: MakeMember
) -> None:
    sku = catalog.sku()
    now = utcnow()
    new5 = _promotion(
        session,
        "NEW5",
        PromotionKind.AMOUNT_OFF,
        {"amount_fen": 500},
        scope=Scope(new_members_only=True),
    )
    _promotion(
        session,
        "LATER",
        PromotionKind.AMOUNT_OFF,
        {"amount_fen": 100},
        starts_at=now + timedelta(1),
    )
    newcomer, regular = make_member(), make_member()
    service.earn_points(session, regular.id, service.Source(SourceType.ORDER, "FIRST"), 10)
    # A signup bonus is a gift, not a purchase: she is still new.
    service.earn_points(session, newcomer.id, service.Source(SourceType.CAMPAIGN, "SIGNUP"), 100)
    seen = {}
    for member in (newcomer, regular, None):
        priced = service.offers_for_basket(
            session,
            [BasketLine(sku.id, 2_000, 1, 1)],
            channel="app",
            store_id=None,
            now=now,
            member_id=member.id if member else None,
        )
        seen[member.id if member else None] = priced.basket.total
        # The promotion that has not started is not even considered.
        assert [e.source for e in priced.explanations] == [f"promotion:{new5.id}"]
    assert seen == {newcomer.id: 1_500, regular.id: 2_000, None: 2_000}
    reasons = service.offers_for_basket(
        session, [BasketLine(sku.id, 2_000, 1, 1)], channel="app", store_id=None, now=now
    ).explanations
    assert [e.reason for e in reasons] == [Reason.MEMBERS_ONLY]


def test_only_the_members_own_coupons_price_her_basket(
    session: Session, catalog: CatalogFactory, make_member: MakeMember
) -> None:
    sku = catalog.sku()
    template = coupons.create_template(
        session,
        code="P10",
        name="9折 最多减5元",
        terms=CouponTerms(CouponKind.PERCENT_OFF, 10, cap_fen=500),
        valid_days=3,
    )
    her, someone = make_member(), make_member()
    mine = coupons.issue_coupon(session, template.id, her.id)
    theirs = coupons.issue_coupon(session, template.id, someone.id)
    basket = [BasketLine(sku.id, 10_000, 1, 1)]
    priced = service.offers_for_basket(
        session,
        basket,
        channel="mini_program",
        store_id=None,
        now=utcnow(),
        member_id=her.id,
        coupon_ids=[mine.id],
    )
    assert priced.basket.total == 9_500
    with pytest.raises(InvalidInput, match=r"coupon_ids\[0\]"):
        service.offers_for_basket(
            session,
            basket,
            channel="app",
            store_id=None,
            now=utcnow(),
            member_id=her.id,
            coupon_ids=[theirs.id],
        )
