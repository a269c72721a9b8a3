"""Fixtures of the demo tests: a fresh SQLite file per test, and settings never cached across."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zhongtai.core.settings import get_settings


@pytest.fixture(autouse=True)
def _forget_settings() -> Iterator[None]:
    # The CLI reads settings through the cached get_settings(); a test's URL must not leak.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'demo.db'}"
