"""Request and response bodies of the points endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.core.text import PlainText
from zhongtai.loyalty.models import EntryKind, SourceType
from zhongtai.loyalty.rules import MAX_SALE_FEN, TenderKind
from zhongtai.loyalty.tier_rules import Tier
from zhongtai.orders.kinds import SalesChannel

SOURCE_ID = r"^[\x21-\x7e]{1,64}$"


class SaleSource(StrEnum):
    """What a touchpoint books points for."""

    POS_SALE = "pos_sale"
    ORDER = "order"


class SaleLineIn(BaseModel):
    net_fen: int = Field(
        ge=0, le=MAX_SALE_FEN, description="The line's amount after discounts, in fen."
    )
    category_id: uuid.UUID | None = None


class TenderIn(BaseModel):
    kind: TenderKind
    amount_fen: int = Field(ge=0, le=MAX_SALE_FEN)


class EarnIn(BaseModel):
    source_type: SaleSource
    source_id: str = Field(
        pattern=SOURCE_ID,
        description="The sale or order id; a replay of the same source changes nothing.",
        examples=["SH001-T01-000123"],
    )
    store_id: uuid.UUID | None = None
    channel: SalesChannel | None = Field(
        default=None,
        description="Where the sale was made, for campaigns limited to channels. Default: pos "
        "for a pos_sale, else the calling key's channel.",
    )
    lines: list[SaleLineIn] = Field(min_length=1, max_length=500)
    tenders: list[TenderIn] = Field(default_factory=list, max_length=20)


class RedeemIn(BaseModel):
    source_type: SaleSource
    source_id: str = Field(pattern=SOURCE_ID)
    points: int = Field(gt=0, le=100_000_000)
    store_id: uuid.UUID | None = None


class EarnedBy(BaseModel):
    source_type: SaleSource
    source_id: str = Field(pattern=SOURCE_ID)


class ReverseIn(BaseModel):
    return_id: str = Field(pattern=SOURCE_ID, description="The return; booked once.")
    earned_by: EarnedBy
    returned_fen: int = Field(
        gt=0, le=MAX_SALE_FEN, description="The amount refunded for the returned goods."
    )
    store_id: uuid.UUID | None = None


class AdjustIn(BaseModel):
    reference: str = Field(pattern=SOURCE_ID, description="Your reference; booked once.")
    points: int = Field(description="Positive to credit, negative to debit; not 0.")
    reason: PlainText = Field(min_length=1, max_length=255)


class TierMultiplierOut(BaseModel):
    tier: Tier
    multiplier_pct: int


class CampaignMultiplierOut(BaseModel):
    rule_id: uuid.UUID
    name: str
    multiplier_pct: int


class CategoryMultiplierOut(BaseModel):
    rule_id: uuid.UUID
    name: str
    category_id: uuid.UUID
    multiplier_pct: int
    eligible_fen: int = Field(description="The amount of the sale that earned at this rate.")


class MultipliersOut(BaseModel):
    """What a sale earned at: points = eligible yuan × base rate × category × tier × campaign
    (percentages; rounded down once)."""

    points_per_yuan: int
    eligible_fen: int = Field(description="Net amount paid with money (not points or coupons).")
    tier: TierMultiplierOut
    campaign: CampaignMultiplierOut | None = Field(
        description="The campaign that applied; campaigns never stack, the highest wins."
    )
    categories: list[CategoryMultiplierOut] = Field(
        description="Category rules that applied (the nearest category's rule per line); "
        "other lines earned at 100%."
    )


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    member_id: uuid.UUID
    kind: EntryKind
    source_type: SourceType
    source_id: str
    points: int = Field(description="Change of the spendable balance.")
    debt_change: int
    pending_change: int = Field(description="Change of the pending points.")
    balance_after: int
    debt_after: int
    pending_after: int
    amount_fen: int | None
    related_entry_id: uuid.UUID | None = Field(
        description="Reverse or mature: the earn entry it concerns."
    )
    matures_at: datetime | None = Field(
        description="Earn of pending points: when they become spendable."
    )
    multipliers: MultipliersOut | None = Field(
        description="Earn from a sale: the rates it earned at."
    )
    store_id: uuid.UUID | None
    reason: str | None
    occurred_at: datetime


class BookedOut(BaseModel):
    replayed: bool = Field(description="True when the source was already booked: nothing changed.")
    entry: EntryOut


class ExpiringOut(BaseModel):
    expires_at: datetime
    points: int


class MaturingOut(BaseModel):
    matures_at: datetime
    points: int


class BalanceOut(BaseModel):
    member_id: uuid.UUID
    balance: int = Field(description="Points she can spend now.")
    pending: int = Field(
        description="Points earned from orders still inside their return window: not "
        "spendable until they mature (see maturing)."
    )
    debt: int = Field(description="Points owed from returns of goods whose points were spent.")
    expiring: list[ExpiringOut]
    maturing: list[MaturingOut] = Field(description="The next dates pending points mature.")
    tier: Tier = Field(description="standard 普通, silver 银卡, gold 金卡, black 黑金.")
