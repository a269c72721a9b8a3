"""Identifiers: time-ordered UUIDv7, so ids sort by creation and index pages stay warm."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import uuid6

from zhongtai.core.clock import as_utc


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)


def replayable_id(at: datetime, sequence: int, *parts: object) -> uuid.UUID:
    """An id laid out as UUIDv7 that comes out the same whenever it is made from the same
    inputs: for an id sent to a provider as its idempotency key (a payment, a refund), which a
    step retried after its transaction was lost must send again, unchanged.

    The time field is ``at`` plus ``sequence`` milliseconds, so the ids made for one parent (the
    payments of an order, say, numbered in turn) sort in turn; the random field is a digest of
    ``parts``.
    """
    millis = int(as_utc(at).timestamp() * 1000) + sequence
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    raw = bytearray(millis.to_bytes(6, "big") + digest[:10])
    raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
    raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 9562 variant
    return uuid.UUID(bytes=bytes(raw))
