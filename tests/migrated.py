"""Databases at the head of the migrations, each a copy of one database the test process
migrated once: copying takes a tenth of a second where running the migrations takes several.

Tests of the migrations themselves run them (``tests/migrating.py``); every other test wants
only today's schema.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from tests import pg
from zhongtai.core import migrate


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A migrated PostgreSQL database named after ``prefix``, dropped after: its URL."""
    with pg.temporary_database(prefix, template=_postgres_template()) as url:
        yield url


def sqlite_file(path: Path) -> str:
    """A migrated SQLite database at ``path`` (a new file): its URL."""
    if path.exists():
        raise FileExistsError(path)
    shutil.copyfile(_sqlite_template(), path)
    return f"sqlite:///{path}"


@cache
def _postgres_template() -> str:
    name = f"zt_template_{uuid.uuid4().hex[:12]}"
    pg.create(name)
    atexit.register(pg.drop, name)
    # Alembic closes its connections when done: PostgreSQL copies only a template nobody uses.
    migrate.upgrade(pg.url_of(name))
    return name


@cache
def _sqlite_template() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="zt-template-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "zhongtai.db"
    # Alembic closes its connections when done, which folds the write-ahead log into the file.
    migrate.upgrade(f"sqlite:///{path}")
    if path.with_name(path.name + "-wal").exists():
        raise RuntimeError(f"{path} still has a write-ahead log: it cannot be copied alone")
    return path
