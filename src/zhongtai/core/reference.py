"""Reference data cached per process, made stale by the database itself.

A checkout quote reads the same reference data over and over — pilot rules, opening hours,
the category lineage of SKUs, the promotions — while HQ changes it a few times a day. Each
process keeps what it read, tagged with the *reference generation*: one row that database
triggers set to a new random value whenever a statement writes one of
:data:`REFERENCE_TABLES` (migration ``0017``). A reader that sees another generation than
the tag reads again. Whoever writes — the API, an import, a ``psql`` session — the next read
sees it; nothing in Python has to remember to invalidate.

Random rather than counted: a transaction that wrote and rolled back puts the old value back
together with the old data, so entries tagged with it are right again, and an entry tagged
with the rolled-back value is never matched (a counter would hand that value out again, for
other data). The generation is read *before* the data it tags (in the same statement as the
checkout's locations), so cached data is never older than its tag.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Any, TypeVar

from cachetools import LRUCache
from sqlalchemy import BigInteger, ScalarSelect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from zhongtai.core.db import Base

#: Tables whose writes make every cached read stale.
REFERENCE_TABLES = (
    "categories",
    "products",
    "skus",
    "pilot_rules",
    "opening_hours",
    "opening_exceptions",
    "promotions",
)

Value = TypeVar("Value")


class ReferenceGeneration(Base):
    """The single row whose value changes with every write to the reference tables."""

    __tablename__ = "reference_generation"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)


def generation_column() -> ScalarSelect[Any]:
    """The current generation, to select beside other columns (no statement of its own)."""
    return (
        select(ReferenceGeneration.generation).where(ReferenceGeneration.id == 1).scalar_subquery()
    )


def current_generation(session: Session) -> int:
    """The current generation, in a statement of its own."""
    return int(
        session.scalar(select(ReferenceGeneration.generation).where(ReferenceGeneration.id == 1))
        or 0
    )


def _database(session: Session) -> str:
    return str(session.get_bind().engine.url)


class ReferenceCache:
    """Values read from the reference tables, each kept with the generation it was read at.

    Keyed by the database too (a process may serve several, as tests do). Bounded: the least
    recently used entries go first. Safe to share between threads.
    """

    def __init__(self, maxsize: int) -> None:
        self._entries: LRUCache[Hashable, tuple[int, Any]] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def get(
        self, session: Session, generation: int | None, key: Hashable, read: Callable[[], Value]
    ) -> Value:
        """The value of ``key`` at ``generation``: kept, or ``read()`` now and kept. Without a
        generation (a database without the row) it is read every time."""
        if generation is None:
            return read()
        full_key = (_database(session), key)
        with self._lock:
            entry = self._entries.get(full_key)
        if entry is not None and entry[0] == generation:
            value: Value = entry[1]
            return value
        value = read()
        with self._lock:
            self._entries[full_key] = (generation, value)
        return value

    def get_many(
        self,
        session: Session,
        generation: int,
        keys: Collection[Hashable],
        read: Callable[[list[Hashable]], Mapping[Hashable, Value]],
    ) -> dict[Hashable, Value]:
        """The values of ``keys`` at ``generation``; those not kept are read in one call of
        ``read(missing)``, which answers every key it was given."""
        url = _database(session)
        found: dict[Hashable, Value] = {}
        missing: list[Hashable] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get((url, key))
                if entry is not None and entry[0] == generation:
                    found[key] = entry[1]
                else:
                    missing.append(key)
        if missing:
            read_now = read(missing)
            with self._lock:
                for key in missing:
                    found[key] = read_now[key]
                    self._entries[(url, key)] = (generation, read_now[key])
        return found
