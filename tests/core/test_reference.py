"""Reference data cached per process is stale the moment HQ writes: every write to a reference
table gives the database a new generation, and a rolled-back write gives the old one back."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from zhongtai.catalog import service as catalog
from zhongtai.core.reference import REFERENCE_TABLES, current_generation


def _triggers_on(connection: Connection, table: str) -> list[str]:
    if connection.dialect.name == "postgresql":
        sql = (
            "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
            "AND NOT tgisinternal"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
    return list(connection.execute(text(sql), {"t": table}).scalars())


@pytest.mark.parametrize("table", REFERENCE_TABLES)
def test_every_reference_table_has_its_generation_triggers(
    connection: Connection, table: str
) -> None:
    # A migration that rebuilds one of these tables (SQLite's batch mode copies it into a new
    # one) must create its triggers again: this is what tells.
    names = _triggers_on(connection, table)
    expected = 1 if connection.dialect.name == "postgresql" else 3
    assert len([n for n in names if n.startswith(f"zt_reference_{table}")]) == expected, names


def test_a_write_changes_the_generation_and_its_rollback_restores_it(session: Session) -> None:
    before = current_generation(session)
    session.begin_nested()
    catalog.create_category(session, code="GEN1", name="代数", parent_id=None)
    during = current_generation(session)
    session.rollback()
    assert during != before
    assert current_generation(session) == before
