"""Shared plumbing of the contexts' CLI commands: the database of the settings, with errors
answered as one line on stderr and exit 1 instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.exc import DBAPIError

from zhongtai.core.db import Database
from zhongtai.core.settings import get_settings


@contextmanager
def command_database() -> Iterator[Database]:
    db = Database.connect(get_settings().database_url)
    try:
        yield db
    except DBAPIError as e:
        typer.echo(f"error: cannot use the database: {str(e.orig or e).splitlines()[0]}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        db.dispose()
