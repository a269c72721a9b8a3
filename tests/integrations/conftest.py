"""A migrated database of a test module's own, for tests whose processes really commit, and
the loopback receiver that their webhooks, stock pushes and provider callbacks reach."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import migrated
from tests.conftest import BACKEND
from tests.integrations.receiver import Receiver, http_receiver
from zhongtai.core.db import Database


@pytest.fixture(scope="module")
def own_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "postgresql":
        with migrated.postgres_database("zt_events") as url:
            yield url
    else:
        path: Path = tmp_path_factory.mktemp("events") / "events.db"
        url = migrated.sqlite_file(path)
        yield url


@pytest.fixture(scope="module")
def db(own_database_url: str) -> Iterator[Database]:
    """The module's own database, through a pool shared by the test, the relay and a sender."""
    database = Database.connect(own_database_url, pool_size=8, max_overflow=4)
    yield database
    database.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r
