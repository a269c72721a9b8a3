"""Request and response bodies of returns: the goods that come back, the refunds they give,
and what they do about gifts (``orders.gift_returns``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zhongtai.orders.models import ItemCondition, ReturnGiftAdjustment
from zhongtai.orders.schemas import Quantity, RefundOut


class ReturnLineIn(BaseModel):
    line_id: uuid.UUID
    quantity: int = Quantity
    condition: ItemCondition = ItemCondition.RESELLABLE
    substitute: bool = Field(
        default=False,
        description="True: units of the substitute the store sent for this line come back.",
    )


class ReturnIn(BaseModel):
    reference: str = Field(
        min_length=1, max_length=128, description="Your id of this return; a retry is harmless."
    )
    store_id: uuid.UUID = Field(description="Where the goods came back (any store).")
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=200)


class ReturnLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    order_line_id: uuid.UUID
    substitute: bool
    quantity: int
    condition: ItemCondition
    refund: int


class GiftAdjustmentOut(BaseModel):
    """A gift coupon's gift the return settled: its worth withheld from the refund, or given
    back (one of the two is 0)."""

    coupon_id: uuid.UUID
    gift_line_id: uuid.UUID
    gift_sku_id: uuid.UUID
    threshold_fen: int
    kept_fen: int = Field(description="What the goods that earned the gift count now.")
    withheld: int
    given_back: int
    why: str

    @model_validator(mode="before")
    @classmethod
    def _signed(cls, data: Any) -> Any:
        if not isinstance(data, ReturnGiftAdjustment):
            return data
        return {
            **{k: getattr(data, k) for k in ("coupon_id", "gift_line_id", "gift_sku_id")},
            **{k: getattr(data, k) for k in ("threshold_fen", "kept_fen", "why")},
            "withheld": max(data.amount, 0),
            "given_back": max(-data.amount, 0),
        }


class ReturnOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: uuid.UUID
    reference: str
    store_id: uuid.UUID
    refund_total: int = Field(
        description="What the return refunds: its lines' refunds, less gifts' worth withheld, "
        "plus what is given back for gifts (gift_adjustments)."
    )
    reason: str | None
    occurred_at: datetime
    lines: list[ReturnLineOut]
    gift_adjustments: list[GiftAdjustmentOut] = Field(default_factory=list)
    refunds: list[RefundOut] = Field(default_factory=list)
