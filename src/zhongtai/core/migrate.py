"""Runs the Alembic migration chain shipped inside the package, for any database URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


#: Database objects the migrations create beside tables (dropped with them by ``drop_everything``).
_POSTGRES_FUNCTIONS = ("audit_log_is_append_only()", "zt_new_reference_generation()")


def drop_everything(url: str) -> None:
    """Drop every table of the database (and the migrations' functions), for a fresh start.

    Walking the migrations down instead would have to turn today's rows back into every older
    schema (a coupon kind or a validity older versions did not know), which a downgrade does
    not promise; dropping does not care what the rows hold.
    """
    from sqlalchemy import MetaData

    from zhongtai.core.db import create_db_engine

    engine = create_db_engine(url, schema_changes=True)
    try:
        with engine.begin() as conn:
            tables = MetaData()
            tables.reflect(conn)
            tables.drop_all(conn)
            if conn.dialect.name == "postgresql":
                for function in _POSTGRES_FUNCTIONS:
                    conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function} CASCADE")
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from zhongtai.core.db import create_db_engine

    engine = create_db_engine(url, schema_changes=True)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
