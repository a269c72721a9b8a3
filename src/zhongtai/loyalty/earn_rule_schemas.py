"""Request and response bodies of HQ's points earn rules."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from zhongtai.core.text import PlainText
from zhongtai.loyalty.multiplier_rules import MAX_MULTIPLIER_PCT, EarnRuleDraft, EarnRuleKind
from zhongtai.orders.kinds import SalesChannel


class EarnRuleIn(BaseModel):
    """A category multiplier (``category_id``; it covers the subcategories too) or a campaign
    (``starts_at``/``ends_at``, optionally ``channels`` and ``store_ids``)."""

    model_config = ConfigDict(extra="forbid")

    kind: EarnRuleKind
    name: PlainText = Field(min_length=1, max_length=100, examples=["双11 积分翻倍"])
    multiplier_pct: int = Field(
        ge=0,
        le=MAX_MULTIPLIER_PCT,
        description="Integer percent: 150 = ×1.5, 200 = double points. A category may be 0 "
        "(earns nothing); a campaign is above 100.",
        examples=[200],
    )
    category_id: uuid.UUID | None = Field(default=None, description="Category rules only.")
    starts_at: AwareDatetime | None = Field(default=None, description="Campaigns: from.")
    ends_at: AwareDatetime | None = Field(
        default=None, description="Campaigns: until (exclusive); must be in the future."
    )
    channels: list[SalesChannel] = Field(
        default_factory=list, max_length=10, description="Campaigns: only these (empty: all)."
    )
    store_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=2_000, description="Campaigns: only these (empty: all)."
    )

    def draft(self) -> EarnRuleDraft:
        return EarnRuleDraft(
            kind=self.kind,
            name=self.name,
            multiplier_pct=self.multiplier_pct,
            category_id=None if self.category_id is None else str(self.category_id),
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            channels=frozenset(c.value for c in self.channels),
            store_ids=frozenset(str(s) for s in self.store_ids),
        )


class EarnRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: EarnRuleKind
    name: str
    multiplier_pct: int
    category_id: uuid.UUID | None
    starts_at: datetime | None
    ends_at: datetime | None
    channels: list[str]
    store_ids: list[uuid.UUID]
    active: bool
    created_at: datetime
    deactivated_at: datetime | None
