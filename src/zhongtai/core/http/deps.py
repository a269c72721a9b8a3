"""FastAPI dependencies for the database: the app's Database and the request's session."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from zhongtai.core.db import Database
from zhongtai.core.settings import Settings

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def db_session(request: Request) -> Session:
    """Dependency: the request's session (async only because making it needs no I/O)."""
    return request_session(request)


def request_session(request: Request) -> Session:
    """The request's session: GETs read, other methods write (BEGIN IMMEDIATE on SQLite).

    Made on first use (no connection until the first query) and closed by the route class,
    which also commits it once.
    """
    session: Session | None = getattr(request.state, "db_session", None)
    if session is None:
        db = database(request)
        factory = db.writer if request.method in MUTATING_METHODS else db.reader
        session = factory()
        request.state.db_session = session
    return session
