"""Request and response bodies of the points endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from zhongtai.loyalty.models import EntryKind, SourceType
from zhongtai.loyalty.rules import TenderKind
from zhongtai.loyalty.tier_rules import Tier

SOURCE_ID = r"^[\x21-\x7e]{1,64}$"


class SaleSource(StrEnum):
    """What a touchpoint books points for."""

    POS_SALE = "pos_sale"
    ORDER = "order"


class SaleLineIn(BaseModel):
    net_fen: int = Field(ge=0, description="The line's amount after discounts, in fen.")
    category_id: uuid.UUID | None = None


class TenderIn(BaseModel):
    kind: TenderKind
    amount_fen: int = Field(ge=0)


class EarnIn(BaseModel):
    source_type: SaleSource
    source_id: str = Field(
        pattern=SOURCE_ID,
        description="The sale or order id; a replay of the same source changes nothing.",
        examples=["SH001-T01-000123"],
    )
    store_id: uuid.UUID | None = None
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
    returned_fen: int = Field(gt=0, description="The amount refunded for the returned goods.")
    store_id: uuid.UUID | None = None


class AdjustIn(BaseModel):
    reference: str = Field(pattern=SOURCE_ID, description="Your reference; booked once.")
    points: int = Field(description="Positive to credit, negative to debit; not 0.")
    reason: str = Field(min_length=1, max_length=255)


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    member_id: uuid.UUID
    kind: EntryKind
    source_type: SourceType
    source_id: str
    points: int
    debt_change: int
    balance_after: int
    debt_after: int
    amount_fen: int | None
    store_id: uuid.UUID | None
    reason: str | None
    occurred_at: datetime


class BookedOut(BaseModel):
    replayed: bool = Field(description="True when the source was already booked: nothing changed.")
    entry: EntryOut


class ExpiringOut(BaseModel):
    expires_at: datetime
    points: int


class BalanceOut(BaseModel):
    member_id: uuid.UUID
    balance: int = Field(description="Points she can spend now.")
    debt: int = Field(description="Points owed from returns of goods whose points were spent.")
    expiring: list[ExpiringOut]
    tier: Tier = Field(description="standard 普通, silver 银卡, gold 金卡, black 黑金.")
