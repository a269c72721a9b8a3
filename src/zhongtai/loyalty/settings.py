"""Settings of the points ledger, read from ``ZHONGTAI_*`` variables."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LoyaltySettings(BaseSettings):
    """How long points earned from an order wait before they can be spent."""

    model_config = SettingsConfigDict(env_prefix="ZHONGTAI_", env_file=".env", extra="ignore")

    points_pending_days: int = Field(
        default=0,
        ge=0,
        le=90,
        description="Points earned from an order are pending (not spendable) until its "
        "completion plus this many days: set it to the return window (7) so that a return "
        "takes back points never spent. 0: spendable at once.",
    )

    @property
    def points_pending_for(self) -> timedelta:
        return timedelta(days=self.points_pending_days)


@lru_cache
def loyalty_settings() -> LoyaltySettings:
    return LoyaltySettings()
