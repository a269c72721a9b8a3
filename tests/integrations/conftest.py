"""A migrated database of a test module's own, for tests whose processes really commit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.conftest import BACKEND
from zhongtai.core import migrate


@pytest.fixture(scope="module")
def own_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "postgresql":
        with pg.temporary_database("zt_events") as url:
            migrate.upgrade(url)
            yield url
    else:
        path: Path = tmp_path_factory.mktemp("events") / "events.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        yield url
