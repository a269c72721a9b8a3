"""Settings of the event backbone (relay, broker, webhooks), read from ``ZHONGTAI_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EventSettings(BaseSettings):
    """How events leave Zhongtai. Defaults suit the embedded single-process install."""

    model_config = SettingsConfigDict(env_prefix="ZHONGTAI_", env_file=".env", extra="ignore")

    relay_in_process: bool = Field(
        default=True,
        description="Run the relay and webhook sender inside `serve` (off when `zhongtai relay` "
        "runs as its own process; harmless either way: one relay leads at a time).",
    )
    relay_poll_seconds: float = Field(default=0.2, gt=0, description="Idle wait between passes.")
    relay_busy_poll_seconds: float = Field(
        default=0.01,
        ge=0,
        description="Wait after a pass that published some events (fewer than a batch): events "
        "keep coming, so look again soon, letting a few gather into one pass.",
    )
    relay_batch_size: int = Field(default=500, gt=0)
    relay_lease_seconds: float = Field(
        default=15,
        gt=0,
        description="How long a silent relay keeps the lead before another takes it.",
    )
    broker_enabled: bool = Field(
        default=False, description="Publish every event to the broker at ZHONGTAI_BROKER_URL."
    )
    broker_stream: str = Field(default="ZHONGTAI", description="JetStream stream name.")
    webhook_timeout_seconds: float = Field(default=5, gt=0, description="Per delivery attempt.")
    webhook_max_attempts: int = Field(default=8, gt=0, description="Attempts before 'dead'.")
    webhook_backoff_base_seconds: float = Field(default=2, gt=0)
    webhook_backoff_cap_seconds: float = Field(default=3600, gt=0)
    webhook_concurrency: int = Field(
        default=128, gt=0, description="Delivery attempts in flight at once, all subscriptions."
    )
    webhook_lanes_per_subscription: int = Field(
        default=32,
        gt=0,
        description="Attempts in flight at once for one subscription, each for a different "
        "aggregate (one aggregate's events always go one at a time, in order).",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks go to loopback, private, link-local, multicast or reserved "
        "addresses (a receiver on this machine or the internal network). Off, such URLs are "
        "refused when subscribed and again when sent (DNS can change in between).",
    )
    event_retention_days: float = Field(
        default=30,
        gt=0,
        description="Published events and delivered webhook deliveries older than this are "
        "pruned (never an unpublished event, nor a pending or dead delivery).",
    )
    event_prune_interval_seconds: float = Field(
        default=3600,
        ge=0,
        description="How often the leading relay prunes old events and deliveries (0: never; "
        "`zhongtai events prune` does it on demand).",
    )


@lru_cache(maxsize=1)
def event_settings() -> EventSettings:
    """The process's event settings, read once (a FastAPI dependency tests can override)."""
    return EventSettings()
