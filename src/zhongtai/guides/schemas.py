"""Request and response bodies of the guides API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.guides.attribution_rules import AttributionReason
from zhongtai.guides.binding_rules import BindingRule
from zhongtai.guides.commission_rules import CommissionBasis
from zhongtai.guides.models import CommissionKind, CommissionStatus, GuideStatus
from zhongtai.guides.task_kinds import TaskKind
from zhongtai.guides.task_states import TaskOutcome, TaskStatus

LEVEL = r"^[a-z0-9_-]{1,16}$"


class GuideIn(BaseModel):
    staff_id: uuid.UUID = Field(description="A staff user with the guide role.")
    home_store_id: uuid.UUID | None = Field(
        default=None, description="One of her stores; may be left out when she has one."
    )
    level: str = Field(default="standard", pattern=LEVEL)
    wecom_userid: str | None = Field(default=None, min_length=1, max_length=64)


class GuideChangeIn(BaseModel):
    level: str | None = Field(default=None, pattern=LEVEL)
    wecom_userid: str | None = Field(default=None, min_length=1, max_length=64)


class GuideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    staff_id: uuid.UUID
    home_store_id: uuid.UUID
    level: str
    status: GuideStatus
    wecom_userid: str | None
    left_at: datetime | None
    successor_id: uuid.UUID | None
    created_at: datetime


class LeaveIn(BaseModel):
    successor_id: uuid.UUID | None = Field(
        default=None,
        description="Who takes all her customers; left out, they are spread over the store's "
        "other active guides, each to whoever has the fewest.",
    )


class LeaveOut(BaseModel):
    guide_id: uuid.UUID
    handed_over: dict[uuid.UUID, int]


class TierIn(BaseModel):
    attainment_pct: int = Field(ge=0, le=1000)
    multiplier_pct: int = Field(ge=0, le=1000)


class ProgramIn(BaseModel):
    binding_rule: BindingRule | None = None
    protection_days: int | None = None
    share_window_days: int | None = None
    share_link_days: int | None = None
    bound_guide_earns_online: bool | None = None
    bound_guide_earns_other_stores: bool | None = None
    return_window_days: int | None = None
    target_tiers: list[TierIn] | None = Field(default=None, min_length=1, max_length=10)


class ProgramOut(BaseModel):
    binding_rule: BindingRule
    protection_days: int
    share_window_days: int
    share_link_days: int
    bound_guide_earns_online: bool
    bound_guide_earns_other_stores: bool
    return_window_days: int
    target_tiers: list[TierIn]


class BindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    member_id: uuid.UUID
    guide_id: uuid.UUID
    source: str
    source_ref: str | None
    bound_at: datetime
    protected_until: datetime
    ended_at: datetime | None
    end_reason: str | None


class ReassignIn(BaseModel):
    member_ids: list[uuid.UUID] = Field(min_length=1, max_length=500)
    guide_id: uuid.UUID


class ReassignOut(BaseModel):
    guide_id: uuid.UUID
    reassigned: list[uuid.UUID]
    refused: list[uuid.UUID]


class ShareLinkIn(BaseModel):
    sku_id: uuid.UUID | None = None
    coupon_template_id: uuid.UUID | None = None
    valid_days: int | None = Field(default=None, ge=1, le=365)


class ShareLinkOut(BaseModel):
    id: uuid.UUID
    guide_id: uuid.UUID
    sku_id: uuid.UUID | None
    coupon_template_id: uuid.UUID | None
    expires_at: datetime
    token: str
    url: str = Field(description="Send it, or print it as a QR code (its content is the URL).")


class OpenLinkIn(BaseModel):
    token: str = Field(min_length=10, max_length=2048)
    member_id: uuid.UUID
    channel: Literal["app", "mini_program"]


class OpenLinkOut(BaseModel):
    link_id: uuid.UUID
    guide_id: uuid.UUID
    sku_id: uuid.UUID | None
    coupon_template_id: uuid.UUID | None
    member_id: uuid.UUID
    bound_guide_id: uuid.UUID | None
    binding: str = Field(
        description="What the visit did to her binding: bind, keep, rebind, refuse."
    )
    binding_reason: str
    coupon: str | None = Field(description="issued, limit_reached, closed, or null.")
    coupon_id: uuid.UUID | None


class CustomerOut(BaseModel):
    member_id: uuid.UUID
    name: str | None
    phone: str | None = Field(description="Masked: 138****1234.")
    tags: list[str]
    bound_at: datetime
    source: str
    protected_until: datetime
    last_purchase_at: datetime | None
    orders_12m: int
    spend_12m: int
    contact_options: list[str] = Field(
        description="Channels she agreed to be contacted on (WeCom only when she is in the "
        "guide's WeCom contacts)."
    )


class CustomerSummaryOut(BaseModel):
    customer: CustomerOut
    birthday: date | None
    preferences: dict[str, Any]
    tier: str
    points: int
    points_expiring: list[dict[str, Any]]
    coupons_available: int
    orders_by_channel: dict[str, int]
    recent_orders: list[dict[str, Any]]


class TotalsOut(BaseModel):
    earned: int
    reversed: int
    adjustments: int
    target_bonus: int
    pending: int
    payable: int
    total: int


class PerformanceOut(BaseModel):
    guide_id: uuid.UUID
    month: date
    customers: int
    new_customers: int
    share_links_opened: int
    attributed_sales: int
    attributed_orders: int
    commission: TotalsOut
    rank_in_store: int | None
    guides_in_store: int
    tasks_done: int
    tasks_skipped: int
    tasks_open: int


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: CommissionKind
    amount: int
    status: CommissionStatus
    payable_at: datetime
    order_id: uuid.UUID | None
    attribution_id: uuid.UUID | None
    reason: str
    details: dict[str, Any]
    created_at: datetime


class StatementOut(BaseModel):
    guide_id: uuid.UUID
    guide_name: str
    store_id: uuid.UUID
    month: date
    closed: bool
    attributed_sales: int
    totals: TotalsOut
    entries: list[EntryOut]


class StatementRowOut(BaseModel):
    guide_id: uuid.UUID
    guide_name: str
    username: str
    store_id: uuid.UUID
    attributed_sales: int
    totals: TotalsOut


class AdjustmentIn(BaseModel):
    amount: int = Field(description="Fen; negative to take commission back.")
    reason: str = Field(min_length=3, max_length=200)
    month: date = Field(description="The statement month (its first day).")


class RuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    basis: CommissionBasis
    rate_bp: int = Field(default=0, ge=0, le=10000, description="Percent rules: 500 = 5%.")
    amount_per_item: int = Field(default=0, ge=0, description="Per-item rules: fen per item.")
    category_id: uuid.UUID | None = None
    store_id: uuid.UUID | None = None
    guide_level: str | None = Field(default=None, pattern=LEVEL)
    priority: int = Field(default=0, ge=-100, le=100)


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    basis: CommissionBasis
    rate_bp: int
    amount_per_item: int
    category_id: uuid.UUID | None
    store_id: uuid.UUID | None
    guide_level: str | None
    priority: int
    active: bool
    created_at: datetime


class TargetIn(BaseModel):
    month: date
    target_amount: int = Field(ge=0)


class TargetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    guide_id: uuid.UUID
    month: date
    target_amount: int


class CloseMonthOut(BaseModel):
    month: date
    bonuses: list[EntryOut]


class AttributionOut(BaseModel):
    line_id: uuid.UUID
    guide_id: uuid.UUID | None
    reason: AttributionReason | None
    ref: str | None
    explanation: str
    stored: bool = Field(description="Recorded at completion (false: what the rule says now).")


class UnboundMemberOut(BaseModel):
    member_id: uuid.UUID
    name: str | None
    registered_via: str
    created_at: datetime


class AttributedLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: uuid.UUID
    order_line_id: uuid.UUID
    sku_id: uuid.UUID | None
    member_id: uuid.UUID | None
    reason: AttributionReason
    reason_ref: str | None
    explanation: str
    net_amount: int
    refunded_amount: int
    attributed_at: datetime


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    member_id: uuid.UUID
    kind: TaskKind
    due_on: date
    status: TaskStatus
    priority: int
    explanation: str
    details: dict[str, Any]
    closed_at: datetime | None
    outcome_note: str | None


class CloseTaskIn(BaseModel):
    outcome: TaskOutcome
    note: str | None = Field(default=None, max_length=500)


class RecommendationOut(BaseModel):
    sku_id: uuid.UUID
    code: str
    name: str
    base_price: int
    score: float
    reason: str = Field(description="bought_with, bought_before or popular.")
    because_of: uuid.UUID | None = Field(
        description="The SKU she bought that led here (bought_with): what the guide can say."
    )
    because_of_name: str | None
