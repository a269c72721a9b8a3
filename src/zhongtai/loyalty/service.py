"""The public face of the loyalty context: the use cases other contexts and the API call."""

from __future__ import annotations

from zhongtai.loyalty.accounts import Booked, Source
from zhongtai.loyalty.coupon_use import (
    CouponsBack,
    give_back_coupons,
    lock_coupon,
    redeem_coupon,
    release_coupons,
    release_lapsed_locks,
    restore_coupons_of,
)
from zhongtai.loyalty.coupons import (
    TemplateRules,
    claim_coupon,
    coupon_kinds,
    create_template,
    issue_coupon,
    set_template_active,
)
from zhongtai.loyalty.earn_rules import (
    create_earn_rule,
    deactivate_earn_rule,
    get_earn_rule,
    list_earn_rules,
)
from zhongtai.loyalty.earning import earn_for_reported_sale, earn_for_sale
from zhongtai.loyalty.expiry import ExpiryRun, expire_points
from zhongtai.loyalty.ledger import (
    adjust_points,
    earn_points,
    give_back_points,
    redeem_points,
    reverse_points,
)
from zhongtai.loyalty.maturing import MaturingRun, mature_points
from zhongtai.loyalty.offers import offers_for_basket
from zhongtai.loyalty.promotions import (
    PromotionDefinition,
    create_promotion,
    live_promotions,
    replace_promotion,
)
from zhongtai.loyalty.queries import PointsBalance, points_balance, points_history
from zhongtai.loyalty.tiers import current_tier, review_due_tiers, rolling_spend
from zhongtai.loyalty.verify import VerifyReport, verify

__all__ = [
    "Booked",
    "CouponsBack",
    "ExpiryRun",
    "MaturingRun",
    "PointsBalance",
    "PromotionDefinition",
    "Source",
    "TemplateRules",
    "VerifyReport",
    "adjust_points",
    "claim_coupon",
    "coupon_kinds",
    "create_earn_rule",
    "create_promotion",
    "create_template",
    "current_tier",
    "deactivate_earn_rule",
    "earn_for_reported_sale",
    "earn_for_sale",
    "earn_points",
    "expire_points",
    "get_earn_rule",
    "give_back_coupons",
    "give_back_points",
    "issue_coupon",
    "list_earn_rules",
    "live_promotions",
    "lock_coupon",
    "mature_points",
    "offers_for_basket",
    "points_balance",
    "points_history",
    "redeem_coupon",
    "redeem_points",
    "release_coupons",
    "release_lapsed_locks",
    "replace_promotion",
    "restore_coupons_of",
    "reverse_points",
    "review_due_tiers",
    "rolling_spend",
    "set_template_active",
    "verify",
]
