"""Request and response bodies of promotions, coupons and basket pricing with offers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from zhongtai.core.text import PlainText
from zhongtai.loyalty.coupon_rules import CouponKind
from zhongtai.loyalty.models import CouponStatus
from zhongtai.loyalty.promotion_rules import PromotionKind, Reason, Scope
from zhongtai.loyalty.rules import MAX_SALE_FEN
from zhongtai.loyalty.schemas import SOURCE_ID, SaleSource
from zhongtai.loyalty.tier_rules import Tier
from zhongtai.orders.kinds import LineKind, SalesChannel

CODE = r"^[A-Za-z0-9_-]{1,32}$"
#: The most a coupon's figures may be (fen, percent, units, coupons): kept in the 32-bit
#: columns of PostgreSQL.
COUPON_MAX = 100_000_000
#: As the checkout takes them (orders' ``Quantity`` and ``Fen``).
MAX_QUANTITY = 10_000_000
MAX_FEN = 10**12


class ScopeIn(BaseModel):
    """Where an offer holds; leave a list empty for no restriction on it."""

    channels: list[SalesChannel] = Field(default_factory=list, max_length=10)
    store_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5_000)
    sku_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5_000)
    category_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=500, description="Subcategories are included."
    )
    tiers: list[Tier] = Field(default_factory=list, max_length=4)
    members_only: bool = False
    new_members_only: bool = False

    def rule(self) -> Scope:
        return Scope(
            channels=frozenset(c.value for c in self.channels),
            store_ids=frozenset(self.store_ids),
            sku_ids=frozenset(self.sku_ids),
            category_ids=frozenset(self.category_ids),
            tiers=frozenset(t.value for t in self.tiers),
            members_only=self.members_only,
            new_members_only=self.new_members_only,
        )


class PromotionTermsIn(BaseModel):
    """The terms of a promotion; each kind reads its own (see ``kind``)."""

    model_config = ConfigDict(extra="forbid")

    percent: int | None = Field(default=None, ge=0, le=100)
    amount_fen: int | None = Field(default=None, ge=0)
    threshold_fen: int | None = Field(default=None, ge=0)
    tiers: list[tuple[int, int]] | None = Field(
        default=None, max_length=10, description="满减 tiers: [[10000, 2000], [20000, 5000]]."
    )
    buy: int | None = Field(default=None, ge=1, le=100)
    get: int | None = Field(default=None, ge=1, le=100)
    bundle_quantity: int | None = Field(default=None, ge=2, le=100)
    bundle_price_fen: int | None = Field(default=None, ge=1)
    member_prices: list[tuple[uuid.UUID, int]] | None = Field(default=None, max_length=5_000)
    cap_fen: int | None = Field(default=None, ge=1)


class PromotionIn(BaseModel):
    code: str = Field(pattern=CODE)
    name: PlainText = Field(min_length=1, max_length=100)
    kind: PromotionKind = Field(
        description="percent_off, amount_off (terms.threshold_fen optional), tiered_amount_off "
        "(满减 terms.tiers), buy_n_get_m (terms.buy, terms.get), second_item_percent "
        "(terms.percent paid for the second unit), bundle_price (terms.bundle_quantity, "
        "terms.bundle_price_fen), member_price (terms.member_prices)."
    )
    terms: PromotionTermsIn
    scope: ScopeIn = Field(default_factory=ScopeIn)
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher applies first.")
    exclusive: bool = Field(
        default=False, description="Never combined with another promotion on the same line."
    )
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    active: bool = True


class PromotionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    kind: PromotionKind
    terms: dict[str, Any]
    scope: dict[str, Any]
    priority: int
    exclusive: bool
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    created_at: datetime
    updated_at: datetime


class CouponTemplateIn(BaseModel):
    code: str = Field(pattern=CODE)
    name: PlainText = Field(min_length=1, max_length=100)
    kind: CouponKind
    value: int = Field(
        default=0,
        ge=0,
        le=COUPON_MAX,
        description="Fen off (amount_off), percent (percent_off), the fixed price in fen "
        "(fixed_price), the gift's quantity (gift_item); 0 for free_delivery.",
    )
    threshold_fen: int = Field(default=0, ge=0, le=COUPON_MAX)
    cap_fen: int | None = Field(default=None, ge=1, le=COUPON_MAX)
    gift_sku_id: uuid.UUID | None = None
    scope: ScopeIn = Field(default_factory=ScopeIn)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = Field(default=None, ge=1, le=3_660)
    stacks_with_promotions: bool = True
    stacks_with_coupons: bool = False
    restore_on_full_return: bool = True
    claim_code: str | None = Field(default=None, pattern=CODE)
    total_limit: int | None = Field(default=None, ge=1, le=COUPON_MAX)
    per_member_limit: int = Field(default=1, ge=1, le=1_000)


class CouponTemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    kind: CouponKind
    value: int
    threshold_fen: int
    cap_fen: int | None
    gift_sku_id: uuid.UUID | None
    scope: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    stacks_with_promotions: bool
    stacks_with_coupons: bool
    restore_on_full_return: bool
    claim_code: str | None
    total_limit: int | None
    per_member_limit: int
    issued: int
    active: bool


class IssueIn(BaseModel):
    member_id: uuid.UUID
    via: str = Field(
        default="campaign",
        description="campaign, signup, tier_upgrade, guide, segment (claims use /claim).",
    )


class ClaimIn(BaseModel):
    claim_code: str = Field(pattern=CODE)


class CouponOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    template_id: uuid.UUID
    member_id: uuid.UUID
    status: CouponStatus
    issued_via: str
    issued_at: datetime
    starts_at: datetime | None
    expires_at: datetime
    locked_by: str | None
    locked_until: datetime | None
    redeemed_at: datetime | None
    redeemed_source_id: str | None
    discount_fen: int | None


class LockIn(BaseModel):
    reference: str = Field(
        pattern=r"^[\x21-\x7e]{1,80}$", description="The checkout holding it, e.g. quote:<id>."
    )
    hold_seconds: int = Field(default=900, ge=10, le=86_400)


class ReleaseIn(BaseModel):
    reference: str = Field(pattern=r"^[\x21-\x7e]{1,80}$")


class ReleasedOut(BaseModel):
    released: list[uuid.UUID]


class RedeemCouponIn(BaseModel):
    source_type: SaleSource
    source_id: str = Field(pattern=SOURCE_ID, description="The order id; used once.")
    discount_fen: int | None = Field(
        default=None,
        ge=0,
        le=COUPON_MAX,
        description="What the checkout priced for it (preferred).",
    )
    order_fen: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SALE_FEN,
        description="Without discount_fen: the order to work it out on.",
    )
    reference: str | None = Field(
        default=None, pattern=r"^[\x21-\x7e]{1,80}$", description="The checkout that locked it."
    )


class OfferLineIn(BaseModel):
    sku_id: uuid.UUID | None = None
    unit_price: int = Field(
        ge=0, le=MAX_FEN, description="Fen per price_per units (the shelf price)."
    )
    price_per: int = Field(default=1, ge=1, le=MAX_QUANTITY)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    kind: LineKind = LineKind.GOODS


class PriceBasketIn(BaseModel):
    channel: SalesChannel
    store_id: uuid.UUID | None = None
    member_id: uuid.UUID | None = None
    coupon_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5)
    lines: list[OfferLineIn] = Field(min_length=1, max_length=100)


class DiscountOut(BaseModel):
    source: str
    amount: int
    line_indexes: list[int] | None


class ShareOut(BaseModel):
    source: str
    amount: int


class PricedLineOut(BaseModel):
    amount: int
    discount: int
    net: int
    discounts: list[ShareOut]


class ExplanationOut(BaseModel):
    source: str
    name: str
    applied: bool
    reason: Reason
    sentence: str
    amount: int
    line_indexes: list[int]


class GiftOut(BaseModel):
    source: str = Field(description="The coupon that gives it, ``coupon:<id>``.")
    sku_id: uuid.UUID
    quantity: int = Field(description="Units to add free (grams for weighed goods).")


class PricedBasketOut(BaseModel):
    subtotal: int
    discount_total: int
    total: int = Field(description="The goods after every discount (no delivery fee here).")
    lines: list[PricedLineOut]
    discounts: list[DiscountOut] = Field(
        description="In order: what the checkout hands to its pricing."
    )
    explanations: list[ExplanationOut]
    coupons_used: list[str]
    free_delivery: bool
    gift_sku_ids: list[uuid.UUID]
    gifts: list[GiftOut] = Field(
        description="The gifts the coupons give: a till adds each as a line, free, when the "
        "customer takes it; the online checkout adds them itself."
    )
