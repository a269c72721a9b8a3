"""The public face of the loyalty context: the use cases other contexts and the API call."""

from __future__ import annotations

from zhongtai.loyalty.accounts import Booked, Source
from zhongtai.loyalty.coupons import create_template, issue_coupon, redeem_coupon
from zhongtai.loyalty.earning import earn_for_sale
from zhongtai.loyalty.expiry import ExpiryRun, expire_points
from zhongtai.loyalty.ledger import adjust_points, earn_points, redeem_points, reverse_points
from zhongtai.loyalty.queries import PointsBalance, points_balance, points_history
from zhongtai.loyalty.tiers import current_tier, review_due_tiers, rolling_spend
from zhongtai.loyalty.verify import VerifyReport, verify

__all__ = [
    "Booked",
    "ExpiryRun",
    "PointsBalance",
    "Source",
    "VerifyReport",
    "adjust_points",
    "create_template",
    "current_tier",
    "earn_for_sale",
    "earn_points",
    "expire_points",
    "issue_coupon",
    "points_balance",
    "points_history",
    "redeem_coupon",
    "redeem_points",
    "reverse_points",
    "review_due_tiers",
    "rolling_spend",
    "verify",
]
