"""Pure rules of event delivery: webhook signatures, retry backoff, subscription filters."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Sequence

SIGNATURE_HEADER = "Zhongtai-Signature"
SIGNATURE_VERSION = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under the subscription's secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes, previous: Sequence[str] = ()) -> str:
    """The ``Zhongtai-Signature`` value: ``t=<unix seconds>,v1=<hex digest>``.

    While a rotated secret overlaps with the new one, ``previous`` holds the old secret: one more
    ``v1=`` entry follows, signed with it, so a receiver still on the old secret verifies too (a
    receiver accepts the request when any ``v1`` entry matches its secret).
    """
    entries = [f"t={timestamp}"] + [
        f"{SIGNATURE_VERSION}={signature(key, timestamp, body)}" for key in (secret, *previous)
    ]
    return ",".join(entries)


def verify_signature(
    secret: str, header: str, body: bytes, *, now: int, tolerance_seconds: int = 300
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is recent enough."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v) for v in parts.get(SIGNATURE_VERSION, []))


def backoff_seconds(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, with jitter.

    ``jitter`` in [0, 1] picks a point in the upper half of the window (equal jitter), so
    retries of many deliveries spread out yet never come sooner than half the nominal delay.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter is a fraction in [0, 1]")
    nominal = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return float(nominal / 2 + jitter * nominal / 2)


def subscription_matches(
    event_types: Collection[str],
    store_ids: Collection[str] | None,
    event_type: str,
    store_id: str | None,
) -> bool:
    """Does a subscription want this event? A store filter excludes chain-wide events."""
    if event_type not in event_types:
        return False
    if store_ids is None:
        return True
    return store_id is not None and store_id in store_ids
