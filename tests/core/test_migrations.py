"""The Alembic chain builds exactly the schema the models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from zhongtai.models import metadata


def test_upgrade_head_matches_the_models_with_no_difference(connection: Connection) -> None:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    assert compare_metadata(context, metadata) == []


def test_every_table_of_the_models_exists_after_upgrade(connection: Connection) -> None:
    tables = set(inspect(connection).get_table_names())
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables
