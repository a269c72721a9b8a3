"""Fixtures of the demo tests: a fresh SQLite file per test, settings never cached across, and
databases holding a loaded demo chain (with its order history) for the tests that read one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests import migrated
from tests.conftest import BACKEND
from zhongtai.core.auth import credentials
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
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


#: Members of the small chain: about as many per store as the full demo's supermarkets have.
SMALL_CHAIN_MEMBERS = 1500


def small_chain() -> DemoChain:
    """Three stores: SH002 and SH003 deliver (their districts pilot it), SH003 ships parcels.
    Each has the demo's whole team: a manager, two clerks and five guides, and 500 members."""
    return build_chain(42, stores=3, skus=200, members=SMALL_CHAIN_MEMBERS)


@contextmanager
def loaded_demo_database(
    directory: Path,
    chain: DemoChain,
    *,
    history_days: int,
    today: date | None = None,
    settings: Settings | None = None,
) -> Iterator[str]:
    """A database of its own (PostgreSQL when the run uses it) holding the chain, committed;
    phones sealed and points kept by ``settings`` (default: the process's)."""
    with _migrated_database(directory) as url:
        hasher = credentials._hasher
        # Staff passwords are hashed one by one: cheap parameters keep the load quick.
        credentials._hasher = PasswordHasher(time_cost=1, memory_cost=64)
        db = Database.connect(url)
        try:
            with db.writer() as session, session.begin():
                load_demo_chain(
                    session, chain, history_days=history_days, today=today, settings=settings
                )
        finally:
            credentials._hasher = hasher
            db.dispose()
        yield url


#: The settings the shared history database is loaded with: its key seals the members' phones.
HISTORY_SETTINGS = Settings(
    secret_key="demo-history-tests-secret-0123456789abcdef",
    points_per_yuan=1,
    points_valid_days=365,
)


@pytest.fixture(scope="session")
def history_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The small chain with 90 days of history before SEED_DAY, loaded once for the tests
    that only read it (members, loyalty) with :data:`HISTORY_SETTINGS`."""
    directory: Path = tmp_path_factory.mktemp("history-shared")
    with loaded_demo_database(
        directory, small_chain(), history_days=90, today=SEED_DAY, settings=HISTORY_SETTINGS
    ) as url:
        yield url


@contextmanager
def _migrated_database(directory: Path) -> Iterator[str]:
    if BACKEND == "postgresql":
        with migrated.postgres_database("zt_demo") as url:
            yield url
    else:
        yield migrated.sqlite_file(directory / "demo-chain.db")
