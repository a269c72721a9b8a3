"""HQ's coupon campaigns in the demo chain: the templates it set up over the history (welcome,
spend-and-save, birthday, apparel, scan-to-claim), when, and which members each reached. Plain
data: ``member_coupons`` issues and uses the coupons they give."""

from __future__ import annotations

from dataclasses import dataclass

from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms


@dataclass(frozen=True)
class Campaign:
    """A coupon template HQ set up, with when (in days from the history's end) it was set up
    and its coupons hold: ``valid_days`` after each is issued, within the fixed dates if any.
    (Every demo template has ``valid_days``: the schema before fixed dates requires it, and
    ``seed-demo --reset`` migrates the loaded chain down through it.)"""

    code: str
    name: str
    terms: CouponTerms
    created_day: int
    valid_days: int | None = None
    valid_from_day: int | None = None
    valid_until_day: int | None = None
    apparel_only: bool = False
    stacks_with_promotions: bool = True
    claim_code: str | None = None
    total_limit: int | None = None


WELCOME = Campaign(
    "DEMO-WELCOME", "新人券 满39减10", CouponTerms(CouponKind.AMOUNT_OFF, 1000, 3900), -180, 30
)
MAN100 = Campaign(
    "DEMO-MAN100-20",
    "满100减20",
    CouponTerms(CouponKind.AMOUNT_OFF, 2000, 10_000),
    -22,
    valid_days=35,
    valid_from_day=-21,
    valid_until_day=14,
)
BIRTHDAY = Campaign(
    "DEMO-BIRTHDAY", "生日礼券 满99减30", CouponTerms(CouponKind.AMOUNT_OFF, 3000, 9900), -120, 30
)
APPAREL = Campaign(
    "DEMO-APPAREL-8",
    "服装 8 折（最高减 ¥50）",
    CouponTerms(CouponKind.PERCENT_OFF, 20, cap_fen=5000),
    -31,
    valid_days=45,
    apparel_only=True,
    stacks_with_promotions=False,
)
CLAIMED = Campaign(
    "DEMO-CLAIM-8",
    "扫码领券 满59减8",
    CouponTerms(CouponKind.AMOUNT_OFF, 800, 5900),
    -46,
    valid_days=30,
    valid_from_day=-45,
    valid_until_day=15,
    claim_code="ZHONGTAI8",
    total_limit=2000,
)
CAMPAIGNS = (WELCOME, MAN100, BIRTHDAY, APPAREL, CLAIMED)
#: Who got the campaigns' coupons: a share of the members, apparel lovers, WeChat users.
MAN100_REACH = 0.6
APPAREL_REACH = 0.7
CLAIMED_BY = 0.12
