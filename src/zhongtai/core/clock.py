"""The one clock of the platform: aware UTC datetimes, store-local business days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Treat a naive datetime as UTC (how the database hands them back) and normalise aware ones."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def business_day(moment: datetime, timezone: str) -> date:
    """The calendar day a moment belongs to in a store's own time zone."""
    return as_utc(moment).astimezone(ZoneInfo(timezone)).date()
