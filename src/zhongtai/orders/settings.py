"""Settings of checkout and orders, read from ``ZHONGTAI_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from zhongtai.orders.pricing_rules import DeliveryFeeRule


class OrderSettings(BaseSettings):
    """How long a checkout holds stock, how long an order may stay unpaid and wait at the
    counter, the delivery fee."""

    model_config = SettingsConfigDict(env_prefix="ZHONGTAI_", env_file=".env", extra="ignore")

    quote_ttl_seconds: int = Field(
        default=900, ge=60, le=3600, description="Stock held for a quote (and its unpaid order)."
    )
    paid_hold_days: int = Field(
        default=7, ge=1, le=7, description="How long a paid order's stock stays held at most."
    )
    delivery_target_minutes: int = Field(
        default=30, gt=0, description="The instant-delivery promise the sourcing aims for."
    )
    delivery_fee: int = Field(default=600, ge=0, description="Delivery fee in fen.")
    delivery_free_from: int | None = Field(
        default=5900, ge=0, description="Goods worth this (fen, after discounts) ship free."
    )
    points_per_yuan_off: int = Field(
        default=100, gt=0, description="Points that pay one yuan when points are a tender."
    )
    points_max_share_pct: int = Field(
        default=50, ge=0, le=100, description="At most this share of an order paid in points."
    )
    pickup_max_attempts: int = Field(
        default=5, gt=0, description="Wrong pickup codes per order before it is locked a while."
    )
    pickup_lock_minutes: int = Field(default=15, gt=0)
    pickup_hold_hours: int = Field(
        default=72,
        ge=1,
        le=720,
        description="How long a paid pickup waits at the counter once ready; then `serve` "
        "cancels it, refunds it and puts its goods back on sale.",
    )
    parcel_confirm_days: int = Field(
        default=10,
        ge=1,
        le=60,
        description="How long after shipping a parcel nobody confirmed delivered is confirmed "
        "received by `serve`, completing its order.",
    )
    try_on_hold_hours: int = Field(
        default=48,
        ge=1,
        le=720,
        description="How long a try-on booking's goods wait once ready (or once the ready time "
        "promised has passed, if the store never made them ready); then `serve` cancels it.",
    )

    @property
    def delivery_fee_rule(self) -> DeliveryFeeRule:
        return DeliveryFeeRule(fee=self.delivery_fee, free_from=self.delivery_free_from)


@lru_cache
def order_settings() -> OrderSettings:
    return OrderSettings()
