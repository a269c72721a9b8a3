"""Runtime configuration, read from environment variables prefixed with ``ZHONGTAI_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".zhongtai")


class Settings(BaseSettings):
    """Everything an operator can set. Defaults run the embedded demo on SQLite."""

    model_config = SettingsConfigDict(env_prefix="ZHONGTAI_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR / 'zhongtai.db'}",
        description="SQLAlchemy URL: sqlite:///path.db (embedded) or postgresql+psycopg://...",
    )
    secret_key: SecretStr = Field(
        default=SecretStr("dev-only-secret-change-me-in-production-0123456789"),
        description="Signs access tokens and share links. Set a long random value in production.",
    )
    pii_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes: encrypts members' phone numbers (AES-GCM) and "
        "keys their lookup hashes. Unset, it is derived from secret_key (development only); "
        "production must set it, and keep it: data encrypted under a lost key is gone.",
    )
    points_per_yuan: int = Field(default=1, ge=0, description="Base points earned per yuan.")
    points_valid_days: int = Field(default=365, gt=0, description="How long earned points last.")
    public_url: str | None = Field(
        default=None,
        description="The URL this API is reached at by payment and courier providers' callbacks "
        "(e.g. https://api.example.com); unset, the URL of the request that caused the call.",
    )
    sandbox_courier_time_scale: float = Field(
        default=10.0,
        gt=0,
        description="How much faster than real time the built-in simulated riders move.",
    )
    broker_url: str = Field(default="nats://127.0.0.1:4222", description="Event broker URL.")
    timezone: str = Field(default="Asia/Shanghai", description="Default time zone of the chain.")
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    access_token_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    login_max_failures: int = Field(default=5, gt=0, description="Failures per window before 429.")
    login_failure_window_seconds: int = Field(default=900, gt=0)
    api_key_max_failures_per_ip: int = Field(default=30, gt=0)
    api_key_cache_seconds: float = Field(
        default=10, ge=0, description="How long a process remembers a verified API key (0: off)."
    )
    db_pool_size: int = Field(
        default=8,
        gt=0,
        description="Connections a process keeps open, and as many requests in their endpoints "
        "at once (the rest wait on the event loop). Python runs one thread of a process at a "
        "time: scale with processes (`--workers`, one per core), not with this.",
    )
    db_max_overflow: int = Field(
        default=4,
        ge=0,
        description="Connections opened beyond the pool for background work (jobs, the event "
        "relay) while requests hold all of it; each is closed once returned to a full pool.",
    )
    log_level: str = Field(default="INFO")
    log_json: bool = Field(default=True, description="JSON log lines (false: readable console).")
    idempotency_ttl_hours: int = Field(default=24, gt=0)
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="The largest request body a route accepts (1 MiB): a larger one is refused "
        "with 413 request-too-large before its endpoint runs, or as soon as a streamed body "
        "passes it, without reading the rest.",
    )
    max_bulk_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="The largest body of the bulk routes (`@accepts_bulk_body`: imports, the "
        "POS offline batch upload). A 50,000-row product import is 10-27 MiB (CSV to "
        "pretty-printed JSON), the largest POS batch the schema allows (500 sales of 200 "
        "lines) under 14 MiB.",
    )
    reservation_desk_workers: int = Field(
        default=2,
        gt=0,
        description="Connections of the reservation desk, which holds the stock of concurrent "
        "POST /inventory/reservations in batches, one transaction and commit each.",
    )
    courier_quiet_minutes: float = Field(
        default=10,
        ge=0,
        description="How long a booked rider's job may go without a callback until `serve` "
        "asks the platform where it stands: it applies a step whose callback never came, and "
        "books a rider again in place of a job dropped before pickup (0: never asks).",
    )
    reservation_sweep_seconds: float = Field(
        default=30,
        ge=0,
        description="How often `serve` expires overdue stock holds and unpaid orders and checks "
        "the stores' SLA clocks (0: off).",
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
