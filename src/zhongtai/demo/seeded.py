"""Seeded randomness for the demo: one random stream per part, reproducible UUIDv7 ids."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

#: The demo's ids carry this moment as their UUIDv7 time, so they sort like real ones.
ID_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def stream(seed: int, part: str) -> random.Random:
    """An independent stream per part, so that e.g. more SKUs never change the stores' keys."""
    return random.Random(f"zhongtai-demo:{seed}:{part}")


class SeededIds:
    """UUIDv7 ids from a seeded stream: the same seed gives the same ids, in creation order."""

    def __init__(self, seed: int, part: str, offset_ms: int = 0) -> None:
        self._rng = stream(seed, f"ids:{part}")
        self._ms = int(ID_EPOCH.timestamp() * 1000) + offset_ms

    def __call__(self) -> uuid.UUID:
        self._ms += 1
        rand_a = self._rng.getrandbits(12)
        rand_b = self._rng.getrandbits(62)
        value = (self._ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
        return uuid.UUID(int=value)


def uuid7_at(rng: random.Random, at: datetime, sequence: int | None = None) -> uuid.UUID:
    """A UUIDv7 carrying ``at`` as its time, random bits from ``rng``: history rows sort by
    when they happened, among the ids that live rows get. ``sequence`` (0-4095) takes the place
    of the first random bits, so that rows of the same millisecond sort in the order given."""
    ms = int(at.timestamp() * 1000)
    rand_a = rng.getrandbits(12) if sequence is None else sequence
    rand_b = rng.getrandbits(62)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
