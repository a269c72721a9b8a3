"""On PostgreSQL, the engines' connections keep their prepared statements when a transaction
rolls back (psycopg's own connections forget them all); an engine made for schema changes
keeps psycopg's caution."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text

from zhongtai.core import pg_connection
from zhongtai.core.db import create_db_engine
from zhongtai.core.pg_connection import PreparedKeepingConnection

pytestmark = pytest.mark.postgres_only

QUERY = text("SELECT CAST(:n AS int) + 1")


def _prepared(conn: Connection) -> list[tuple[str, int, int]]:
    """This connection's prepared statements of QUERY: (name, generic plans, custom plans)."""
    rows = conn.execute(
        text(
            "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE 'SELECT CAST($1 AS int) + 1%'"
        )
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _run_until_prepared(conn: Connection) -> None:
    for n in range(7):  # psycopg prepares a statement on its 6th run on a connection
        assert conn.execute(QUERY, {"n": n}).scalar_one() == n + 1


@pytest.fixture
def serving(database_url: str) -> Iterator[Connection]:
    engine = create_db_engine(database_url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def test_the_engines_open_connections_that_keep_prepared_statements(
    serving: Connection,
) -> None:
    assert isinstance(serving.connection.dbapi_connection, PreparedKeepingConnection)


def test_a_rolled_back_transaction_keeps_the_connections_prepared_statements(
    serving: Connection,
) -> None:
    _run_until_prepared(serving)
    before = _prepared(serving)
    assert len(before) == 1
    serving.rollback()  # the transaction the runs began
    serving.execute(text("CREATE TEMPORARY TABLE scratch (n int)"))
    serving.rollback()
    assert serving.execute(QUERY, {"n": 41}).scalar_one() == 42
    ((name, generic, custom),) = _prepared(serving)
    assert name == before[0][0]  # the same statement ran again, not a new one
    assert generic + custom == before[0][1] + before[0][2] + 1


def test_a_failed_transaction_rolls_back_and_the_connection_goes_on_prepared(
    serving: Connection,
) -> None:
    _run_until_prepared(serving)
    with pytest.raises(Exception, match="division by zero"):
        serving.execute(text("SELECT 1 / 0"))
    serving.rollback()
    assert serving.execute(QUERY, {"n": 1}).scalar_one() == 2
    assert len(_prepared(serving)) == 1


def test_an_engine_for_schema_changes_forgets_them_on_rollback_as_psycopg_does(
    database_url: str,
) -> None:
    engine = create_db_engine(database_url, pool_size=1, max_overflow=0, schema_changes=True)
    try:
        with engine.connect() as conn:
            assert not isinstance(conn.connection.dbapi_connection, PreparedKeepingConnection)
            _run_until_prepared(conn)
            assert len(_prepared(conn)) == 1
            conn.rollback()
            assert _prepared(conn) == []
    finally:
        engine.dispose()


def test_without_psycopgs_command_runner_a_rollback_still_rolls_back_as_psycopg_does(
    serving: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_connection, "_RUN_COMMAND", None)
    _run_until_prepared(serving)
    serving.execute(text("CREATE TEMPORARY TABLE scratch (n int)"))
    serving.rollback()
    assert serving.execute(text("SELECT to_regclass('pg_temp.scratch')")).scalar() is None
    assert _prepared(serving) == []  # forgotten, as psycopg's rollback() forgets them
