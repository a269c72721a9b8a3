"""Gift coupons (满额赠) as the orders tests issue and look at them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tests.orders.conftest import new_id
from zhongtai.catalog.models import Sku
from zhongtai.loyalty import coupons
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.coupons import TemplateRules
from zhongtai.loyalty.models import Coupon, CouponStatus
from zhongtai.loyalty.promotion_rules import Scope

#: The gift's line in an order (the checkout adds it after the basket's lines).
GIFT = -1


def gift_coupon(
    session: Session,
    member: Any,
    gift: Sku,
    *,
    units: int = 1,
    threshold: int = 2000,
    only: Sku | None = None,
) -> Any:
    """满X送, issued to ``member``: ``units`` of ``gift`` free from ``threshold`` fen of the
    goods (of ``only``, when given), valid for 30 days; committed."""
    terms = CouponTerms(CouponKind.GIFT_ITEM, units, threshold_fen=threshold, gift_sku_id=gift.id)
    scope = Scope(sku_ids=frozenset({only.id})) if only is not None else Scope()
    template = coupons.create_template(
        session,
        code=f"GIFT-{new_id()[:8]}",
        name="满额赠",
        terms=terms,
        valid_days=30,
        rules=TemplateRules(scope=scope),
    )
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()
    return coupon


def coupon_status(session: Session, coupon: Any) -> CouponStatus:
    """The coupon's status as the database holds it now."""
    held = session.get(Coupon, coupon.id, populate_existing=True)
    assert held is not None
    return held.status
