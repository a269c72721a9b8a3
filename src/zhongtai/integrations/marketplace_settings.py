"""Settings of marketplace stock pushes, read from ``ZHONGTAI_MARKETPLACE_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MarketplaceSettings(BaseSettings):
    """How stock pushes leave Zhongtai. The per-SKU interval is each connection's own setting."""

    model_config = SettingsConfigDict(
        env_prefix="ZHONGTAI_MARKETPLACE_", env_file=".env", extra="ignore"
    )

    timeout_seconds: float = Field(default=5, gt=0, description="Per push request.")
    backoff_base_seconds: float = Field(
        default=1, gt=0, description="First retry after a failed push; doubles per failure."
    )
    backoff_cap_seconds: float = Field(
        default=60,
        gt=0,
        description="Longest wait between retries: stock keeps being retried, never dropped.",
    )
    concurrency: int = Field(default=32, gt=0, description="Push requests open at once.")
    per_connection: int = Field(
        default=4, gt=0, description="Push requests open at once to one marketplace."
    )
    max_items: int = Field(default=200, gt=0, description="SKUs of one store per request.")
    poll_limit: int = Field(default=2000, gt=0, description="Due SKUs read per pass.")
    allow_private_targets: bool = Field(
        default=False,
        description="Let stock pushes go to loopback, private, link-local, multicast or reserved "
        "addresses (a marketplace bridge on this machine or the internal network). Off, such "
        "URLs are refused when a connection is made or changed, and again at every push (DNS "
        "can change in between).",
    )


@lru_cache(maxsize=1)
def marketplace_settings() -> MarketplaceSettings:
    """The process's marketplace settings, read once (a FastAPI dependency tests can override)."""
    return MarketplaceSettings()
