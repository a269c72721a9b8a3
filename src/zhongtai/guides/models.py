"""Tables of shopping guides: the guides, their customers (bindings), share links and visits,
WeCom contacts, sales attributed to them, commission rules, targets and the commission ledger."""

from __future__ import annotations

import uuid
from datetime import date, datetime
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
from zhongtai.core.db import Base, IdMixin, TimestampMixin, str_enum
from zhongtai.guides.attribution_rules import AttributionReason
from zhongtai.guides.binding_rules import BindingRule, BindingSource
from zhongtai.guides.commission_rules import CommissionBasis


class GuideStatus(StrEnum):
    ACTIVE = "active"
    #: Left the company: earns nothing more; her customers were handed over.
    LEFT = "left"


class Guide(TimestampMixin, Base):
    """A staff user with the guide role, seen as a guide: her store, level and WeCom account.

    The guide's id is her staff user id, the id orders carry as ``guide_id``.
    """

    __tablename__ = "guides"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"), primary_key=True)
    home_store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), index=True)
    #: Commission rules may differ by level ("junior", "senior", "star", ...).
    level: Mapped[str] = mapped_column(String(16), default="standard")
    status: Mapped[GuideStatus] = mapped_column(
        str_enum(GuideStatus, length=8), default=GuideStatus.ACTIVE
    )
    #: Her WeCom (企业微信) user id: contact events name her by it.
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    left_at: Mapped[datetime | None]
    #: Who took her customers over when she left.
    successor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("guides.staff_id"))


class GuideProgram(Base):
    """The chain's guide programme: how binding and attribution work. One row (id 1)."""

    __tablename__ = "guide_program"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    binding_rule: Mapped[BindingRule] = mapped_column(str_enum(BindingRule, length=16))
    protection_days: Mapped[int]
    share_window_days: Mapped[int]
    share_link_days: Mapped[int]
    bound_guide_earns_online: Mapped[bool]
    bound_guide_earns_other_stores: Mapped[bool]
    return_window_days: Mapped[int]
    #: Monthly target tiers: [{"attainment_pct": 100, "multiplier_pct": 130}, ...].
    target_tiers: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(80))


class GuideBinding(IdMixin, Base):
    """A member's guide for a while. The row without ``ended_at`` is her current guide (at most
    one, by a partial unique index); ended rows are the history."""

    __tablename__ = "guide_bindings"
    __table_args__ = (
        Index(
            "uq_guide_bindings_current_member",
            "member_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_guide_bindings_guide_current", "guide_id", "ended_at"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    guide_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guides.staff_id"))
    source: Mapped[BindingSource] = mapped_column(str_enum(BindingSource, length=16))
    #: What made the binding: an order id, a share link id, a WeCom external user id, ...
    source_ref: Mapped[str | None] = mapped_column(String(128))
    bound_at: Mapped[datetime]
    protected_until: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    #: Why it ended: "rebound", "handover", "reassigned", "wecom_removed", "merged", ...
    end_reason: Mapped[str | None] = mapped_column(String(24))
    actor: Mapped[str | None] = mapped_column(String(80))


class ShareLink(IdMixin, Base):
    """A link or QR code a guide shares: signed, expiring, for a product, a coupon or her shop."""

    __tablename__ = "guide_share_links"

    guide_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guides.staff_id"), index=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    sku_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("skus.id"))
    coupon_template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("coupon_templates.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    opened_count: Mapped[int] = mapped_column(default=0)


class ShareVisit(IdMixin, Base):
    """A member opened a share link: the touch that credits the guide for a while."""

    __tablename__ = "guide_share_visits"
    __table_args__ = (Index("ix_guide_share_visits_member_at", "member_id", "opened_at"),)

    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guide_share_links.id"), index=True)
    guide_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guides.staff_id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    sku_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("skus.id"))
    opened_at: Mapped[datetime]
    #: Where she opened it: app, mini_program.
    channel: Mapped[str] = mapped_column(String(16))


class WeComContact(IdMixin, Base):
    """A customer in a guide's WeCom contacts, as WeCom's contact events told us."""

    __tablename__ = "guide_wecom_contacts"
    __table_args__ = (UniqueConstraint("guide_id", "external_userid"),)

    guide_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guides.staff_id"))
    external_userid: Mapped[str] = mapped_column(String(64), index=True)
    #: The member found by the contact's WeChat unionid (None while unknown).
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"), index=True)
    added_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    #: Who removed whom: "del_external_contact" (the guide) or "del_follow_user" (the customer).
    removed_by: Mapped[str | None] = mapped_column(String(24))
    state: Mapped[str | None] = mapped_column(String(64))


class WeComCallbackReceipt(Base):
    """A WeCom callback already taken: the same signed message is never applied twice."""

    __tablename__ = "wecom_callback_receipts"

    replay_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LineAttribution(IdMixin, Base):
    """An order line credited to a guide, with the reason shown to her."""

    __tablename__ = "guide_attributions"
    __table_args__ = (
        Index("ix_guide_attributions_guide_at", "guide_id", "attributed_at"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= net_amount", name="refund"),
    )

    order_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_lines.id"), unique=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    guide_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guides.staff_id"))
    #: The store whose figures the sale counts in: the guide's home store.
    credited_store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"))
    reason: Mapped[AttributionReason] = mapped_column(str_enum(AttributionReason, length=16))
    #: The share link or binding behind the reason.
    reason_ref: Mapped[str | None] = mapped_column(String(64))
    explanation: Mapped[str] = mapped_column(String(300))
    sku_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("skus.id"))
    #: What the customer paid for the line (after discounts and short-pick refunds), fen.
    net_amount: Mapped[int]
    #: Refunded by returns so far, net of a gift's worth withheld from them while the customer
    #: keeps the gift (commission is taken back in proportion: ``guides.refund_rules``).
    refunded_amount: Mapped[int] = mapped_column(default=0)
    attributed_at: Mapped[datetime]


class CommissionRuleRecord(IdMixin, Base):
    """A commission rule set by HQ: percent of net or fixed per item, by category/store/level."""

    __tablename__ = "guide_commission_rules"
    __table_args__ = (
        CheckConstraint("rate_bp >= 0 AND rate_bp <= 10000", name="rate"),
        CheckConstraint("amount_per_item >= 0", name="amount"),
    )

    name: Mapped[str] = mapped_column(String(100))
    basis: Mapped[CommissionBasis] = mapped_column(str_enum(CommissionBasis, length=16))
    rate_bp: Mapped[int] = mapped_column(default=0)
    amount_per_item: Mapped[int] = mapped_column(default=0)
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"))
    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    guide_level: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))


class MonthlyTarget(Base):
    """A guide's sales target for a month (net attributed sales, fen)."""

    __tablename__ = "guide_monthly_targets"
    __table_args__ = (CheckConstraint("target_amount >= 0", name="target"),)

    guide_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guides.staff_id"), primary_key=True)
    #: The first day of the month.
    month: Mapped[date] = mapped_column(primary_key=True)
    target_amount: Mapped[int]
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    set_by: Mapped[str | None] = mapped_column(String(80))


class CommissionKind(StrEnum):
    EARNED = "earned"
    #: Taken back for a return (negative).
    REVERSED = "reversed"
    #: A manager's correction, with a reason (audited).
    ADJUSTMENT = "adjustment"
    #: The monthly target's tier bonus, when the month is closed.
    TARGET_BONUS = "target_bonus"


class CommissionStatus(StrEnum):
    #: Waiting for the return window to close.
    PENDING = "pending"
    PAYABLE = "payable"


class CommissionEntry(IdMixin, Base):
    """One line of a guide's commission ledger (append-only; status moves pending → payable)."""

    __tablename__ = "guide_commission_entries"
    __table_args__ = (
        UniqueConstraint("kind", "source_ref"),
        Index("ix_guide_commission_guide_month", "guide_id", "month"),
        Index("ix_guide_commission_pending", "status", "payable_at"),
    )

    guide_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guides.staff_id"))
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), index=True)
    #: The statement month it belongs to (first day of the month).
    month: Mapped[date]
    kind: Mapped[CommissionKind] = mapped_column(str_enum(CommissionKind, length=16))
    #: Fen; negative for reversals and downward adjustments.
    amount: Mapped[int]
    status: Mapped[CommissionStatus] = mapped_column(str_enum(CommissionStatus, length=8))
    payable_at: Mapped[datetime]
    #: What the entry is for, unique per kind: a retried event or request adds nothing twice.
    source_ref: Mapped[str] = mapped_column(String(128))
    attribution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("guide_attributions.id"), index=True
    )
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("guide_commission_rules.id"))
    #: Shown on the statement: "5.00% of ¥129.00 (rule 'Apparel')", "return R-1: -¥3.20", ...
    reason: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))


class ClosedMonth(Base):
    """A statement month closed: target bonuses are booked and nothing more is added to it."""

    __tablename__ = "guide_closed_months"

    month: Mapped[date] = mapped_column(primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(80))
