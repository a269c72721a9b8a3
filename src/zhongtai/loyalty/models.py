"""Tables of the points ledger: accounts, lots (what was earned and what is left), entries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from zhongtai.core.clock import utcnow
from zhongtai.core.db import Base, IdMixin, str_enum
from zhongtai.loyalty.coupon_rules import CouponKind
from zhongtai.loyalty.multiplier_rules import MAX_MULTIPLIER_PCT, EarnRuleKind
from zhongtai.loyalty.promotion_rules import PromotionKind
from zhongtai.loyalty.tier_rules import Tier


class EntryKind(StrEnum):
    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    ADJUST = "adjust"
    #: Points taken back because the goods that earned them were returned.
    REVERSE = "reverse"
    #: New points paying off a debt left by a reversal of points already spent.
    SETTLE = "settle"
    #: Pending points of a sale became spendable: its return window has passed.
    MATURE = "mature"
    MERGE_IN = "merge_in"
    MERGE_OUT = "merge_out"


class SourceType(StrEnum):
    """What caused an entry; with ``source_id`` it makes the entry happen once."""

    POS_SALE = "pos_sale"
    ORDER = "order"
    RETURN = "return"
    CAMPAIGN = "campaign"
    ADJUSTMENT = "adjustment"
    LOT = "lot"
    MERGE = "merge"


class PointsAccount(Base):
    """A member's balance (what her spendable lots hold), her pending points (what her lots
    still inside their return window hold) and her debt."""

    __tablename__ = "points_accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("debt >= 0", name="debt_not_negative"),
        CheckConstraint("pending >= 0", name="pending_not_negative"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    #: Spendable: a redemption is a conditional update of this column alone.
    balance: Mapped[int] = mapped_column(default=0)
    #: Points reversed after they were spent; the next earnings pay it off first.
    debt: Mapped[int] = mapped_column(default=0)
    #: Earned but not spendable until the order's return window has passed.
    pending: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PointsEntry(IdMixin, Base):
    """One change of a member's points. Unique on (source, member, kind): it happens once."""

    __tablename__ = "points_entries"
    __table_args__ = (
        UniqueConstraint("source_type", "source_id", "member_id", "kind"),
        Index("ix_points_entries_member_history", "member_id", "id"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind, length=16))
    source_type: Mapped[SourceType] = mapped_column(str_enum(SourceType, length=16))
    source_id: Mapped[str] = mapped_column(String(64))
    #: Signed change of the balance.
    points: Mapped[int]
    #: Signed change of the debt.
    debt_change: Mapped[int] = mapped_column(default=0)
    #: Signed change of the pending points.
    pending_change: Mapped[int] = mapped_column(default=0)
    balance_after: Mapped[int]
    debt_after: Mapped[int]
    pending_after: Mapped[int] = mapped_column(default=0)
    #: Earn: the sale's net amount the points were computed on; reverse: the amount returned.
    amount_fen: Mapped[int | None]
    #: Reverse: the earn entry it takes back; mature: the earn entry whose points matured.
    related_entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("points_entries.id"))
    #: Earn of pending points: when they become spendable.
    matures_at: Mapped[datetime | None]
    #: Earn from a sale: the base rate and the tier, campaign and category multipliers it
    #: earned at (see ``multiplier_rules.applied_multipliers``).
    multipliers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    reason: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))

    @property
    def points_earned(self) -> int:
        """What an earn entry credited, spendable at once or pending."""
        return self.points + self.pending_change


class PointsLot(IdMixin, Base):
    """Points earned together, spent nearest-expiry first; ``remaining`` is what is left.
    A pending lot counts in the account's ``pending``, not its balance, until it matures."""

    __tablename__ = "points_lots"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
        CheckConstraint("NOT pending OR matures_at IS NOT NULL", name="pending_has_a_date"),
        Index(
            "ix_points_lots_pending_maturity",
            "matures_at",
            sqlite_where=text("pending"),
            postgresql_where=text("pending"),
        ),
        Index("ix_points_lots_member_expiry", "member_id", "expires_at"),
        Index(
            "ix_points_lots_live_expiry",
            "expires_at",
            sqlite_where=text("remaining > 0"),
            postgresql_where=text("remaining > 0"),
        ),
    )

    #: The current owner (a merge moves lots to the survivor).
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    source_type: Mapped[SourceType] = mapped_column(str_enum(SourceType, length=16))
    source_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int]
    remaining: Mapped[int]
    earned_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    #: When the points are (or were) spendable; None: at once.
    matures_at: Mapped[datetime | None]
    #: Until its maturing entry is booked: only a return of its own sale takes from it.
    pending: Mapped[bool] = mapped_column(default=False)


class PointsLotUse(IdMixin, Base):
    """Which lot an entry took points from, and how many."""

    __tablename__ = "points_lot_uses"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        UniqueConstraint("entry_id", "lot_id"),
    )

    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("points_entries.id"))
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("points_lots.id"), index=True)
    points: Mapped[int]


class MemberTier(Base):
    """A member's tier and the date it is next reviewed (downgrades wait for it)."""

    __tablename__ = "member_tiers"

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    tier: Mapped[Tier] = mapped_column(str_enum(Tier, length=16))
    since: Mapped[datetime]
    review_at: Mapped[datetime] = mapped_column(index=True)


class CouponStatus(StrEnum):
    AVAILABLE = "available"
    #: Held by a checkout (``locked_by``) until ``locked_until``; then free again.
    LOCKED = "locked"
    REDEEMED = "redeemed"


class CouponTemplate(IdMixin, Base):
    """What a coupon gives, where and when it holds, and how many may be issued (in all, and
    to one member); ``claim_code`` lets shoppers claim one themselves."""

    __tablename__ = "coupon_templates"
    __table_args__ = (
        CheckConstraint("value > 0 OR kind = 'free_delivery'", name="value_positive"),
        CheckConstraint("kind <> 'percent_off' OR value <= 100", name="percent_in_range"),
        CheckConstraint("total_limit IS NULL OR issued <= total_limit", name="within_limit"),
        CheckConstraint("per_member_limit > 0", name="per_member_positive"),
        CheckConstraint(
            "valid_days IS NOT NULL OR valid_until IS NOT NULL", name="validity_has_an_end"
        ),
    )

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[CouponKind] = mapped_column(str_enum(CouponKind, length=16))
    value: Mapped[int]
    threshold_fen: Mapped[int] = mapped_column(default=0)
    cap_fen: Mapped[int | None]
    gift_sku_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("skus.id"))
    #: Where it holds: channels, store_ids, sku_ids, category_ids, tiers, members_only,
    #: new_members_only (lists of strings; empty: anywhere).
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Fixed dates, and/or this many days after each coupon is issued.
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    valid_days: Mapped[int | None]
    stacks_with_promotions: Mapped[bool] = mapped_column(default=True)
    stacks_with_coupons: Mapped[bool] = mapped_column(default=False)
    #: A coupon of an order returned in full comes back to the member (if still valid).
    restore_on_full_return: Mapped[bool] = mapped_column(default=True)
    #: Shoppers claim a coupon with this code (case-insensitive, stored upper case).
    claim_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    total_limit: Mapped[int | None]
    per_member_limit: Mapped[int] = mapped_column(default=1)
    issued: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Coupon(IdMixin, Base):
    """One coupon held by a member; redeemed once, at whichever touchpoint comes first."""

    __tablename__ = "coupons"
    __table_args__ = (
        Index("ix_coupons_member_template", "member_id", "template_id"),
        Index("ix_coupons_redeemed_source", "redeemed_source_id"),
    )

    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupon_templates.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    status: Mapped[CouponStatus] = mapped_column(
        str_enum(CouponStatus, length=16), default=CouponStatus.AVAILABLE
    )
    #: How it came: campaign, signup, tier_upgrade, guide, claim.
    issued_via: Mapped[str] = mapped_column(String(16), default="campaign")
    issued_at: Mapped[datetime]
    starts_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(80))
    locked_until: Mapped[datetime | None]
    redeemed_at: Mapped[datetime | None]
    redeemed_source_type: Mapped[SourceType | None] = mapped_column(str_enum(SourceType, length=16))
    redeemed_source_id: Mapped[str | None] = mapped_column(String(64))
    discount_fen: Mapped[int | None]


class CouponAction(StrEnum):
    ISSUE = "issue"
    LOCK = "lock"
    RELEASE = "release"
    REDEEM = "redeem"
    RESTORE = "restore"


class CouponUse(IdMixin, Base):
    """The append-only history of every coupon: issued, locked, released, redeemed, restored."""

    __tablename__ = "coupon_uses"
    __table_args__ = (Index("ix_coupon_uses_coupon", "coupon_id", "id"),)

    coupon_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupons.id"))
    action: Mapped[CouponAction] = mapped_column(str_enum(CouponAction, length=16))
    reference: Mapped[str | None] = mapped_column(String(80))
    discount_fen: Mapped[int | None]
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))


class Promotion(IdMixin, Base):
    """An automatic promotion HQ runs: its kind and terms, scope, window, priority."""

    __tablename__ = "promotions"
    __table_args__ = (Index("ix_promotions_live", "active", "ends_at"),)

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[PromotionKind] = mapped_column(str_enum(PromotionKind, length=24))
    #: percent, amount_fen, threshold_fen, tiers, buy, get, bundle_quantity, bundle_price_fen,
    #: member_prices, cap_fen — as in ``promotion_rules.Promotion``.
    terms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(default=0)
    exclusive: Mapped[bool] = mapped_column(default=False)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EarnRule(IdMixin, Base):
    """A points multiplier HQ set: for a category (and its subcategories), or a campaign with
    a window and optional channels and stores. Deactivated, never deleted: entries name it."""

    __tablename__ = "points_earn_rules"
    __table_args__ = (
        CheckConstraint(
            f"multiplier_pct >= 0 AND multiplier_pct <= {MAX_MULTIPLIER_PCT}",
            name="multiplier_in_range",
        ),
        CheckConstraint(
            "(kind = 'category' AND category_id IS NOT NULL AND ends_at IS NULL) OR "
            "(kind = 'campaign' AND category_id IS NULL AND starts_at IS NOT NULL "
            "AND ends_at IS NOT NULL AND ends_at > starts_at)",
            name="kind_has_its_terms",
        ),
        # One live rule per category: "the nearest category's rule" is always one rule.
        Index(
            "uq_points_earn_rules_live_category",
            "category_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        Index("ix_points_earn_rules_live", "kind", "active", "ends_at"),
    )

    kind: Mapped[EarnRuleKind] = mapped_column(str_enum(EarnRuleKind, length=16))
    name: Mapped[str] = mapped_column(String(100))
    #: Integer percent: 150 = ×1.5, 200 = 积分翻倍.
    multiplier_pct: Mapped[int]
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    #: Campaigns: the sales channels and store ids it is limited to (empty: all).
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    store_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None]
