"""Identifiers: time-ordered UUIDv7, so ids sort by creation and index pages stay warm."""

from __future__ import annotations

import uuid

import uuid6


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)
