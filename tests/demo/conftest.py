"""Fixtures of the demo tests: a fresh SQLite file per test, settings never cached across, and
databases holding a loaded demo chain (with its order history) for the tests that read one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests import pg
from tests.conftest import BACKEND
from zhongtai.core import migrate
from zhongtai.core.auth import credentials
from zhongtai.core.db import Database
from zhongtai.demo import DemoChain, build_chain, load_demo_chain

#: The seed day of the history the tests load: a Thursday, so weekends fall inside it.
SEED_DAY = date(2026, 11, 26)


@pytest.fixture(autouse=True)
def _forget_settings() -> Iterator[None]:
    # The CLI reads settings through the cached get_settings(); a test's URL must not leak.
    from zhongtai.core.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'demo.db'}"


def small_chain() -> DemoChain:
    """Three stores: SH002 and SH003 deliver (their districts pilot it), SH003 ships parcels.
    Each has the demo's whole team: a manager, two clerks and five guides."""
    return build_chain(42, stores=3, skus=200)


@contextmanager
def loaded_demo_database(
    directory: Path, chain: DemoChain, *, history_days: int, today: date | None = None
) -> Iterator[str]:
    """A database of its own (PostgreSQL when the run uses it) holding the chain, committed."""
    with _database(directory) as url:
        migrate.upgrade(url)
        hasher = credentials._hasher
        # Staff passwords are hashed one by one: cheap parameters keep the load quick.
        credentials._hasher = PasswordHasher(time_cost=1, memory_cost=64)
        db = Database.connect(url)
        try:
            with db.writer() as session, session.begin():
                load_demo_chain(session, chain, history_days=history_days, today=today)
        finally:
            credentials._hasher = hasher
            db.dispose()
        yield url


@contextmanager
def _database(directory: Path) -> Iterator[str]:
    if BACKEND == "postgresql":
        with pg.temporary_database("zt_demo") as url:
            yield url
    else:
        yield f"sqlite:///{directory / 'demo-chain.db'}"
