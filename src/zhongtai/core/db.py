"""Database engine, session factories and the declarative base every context's models share."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, cast

from sqlalchemy import DateTime, Engine, Enum, Insert, MetaData, Table, create_engine, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from zhongtai.core import pg_connection
from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.ids import new_id

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back an aware UTC datetime, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


def str_enum(enum_type: type[enum.StrEnum], length: int = 32) -> Enum:
    """A string column holding a StrEnum's *values* ('delivery', not 'DELIVERY'), no native type.

    Values are what the API speaks and what SQL reports read, and adding a member needs no
    ALTER TYPE; the check constraint SQLAlchemy adds keeps out anything else.
    """
    return Enum(
        enum_type,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        create_constraint=True,
        name=enum_type.__name__.lower(),
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def insert_row(session: Session, model: type[Base], row: dict[str, Any]) -> None:
    """INSERT one row of ``model``'s table at once, by a Core statement in the session's
    transaction, keeping no instance: for rows the request never reads back, on paths busy
    enough that the ORM's unit of work costs more than the INSERT. What the session holds new
    is flushed first, so that rows keep the order they were written in (an outbox event's
    ``seq``) and the rows they refer to exist."""
    if session.new:
        session.flush()
    session.connection().execute(_insert_of(model), row)


def conflict_insert(session: Session) -> Callable[[Any], postgresql.Insert | sqlite.Insert]:
    """The ``insert`` of the session's database, whose statements take ``ON CONFLICT`` clauses
    (``on_conflict_do_nothing``, ``on_conflict_do_update``): PostgreSQL's or SQLite's."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@lru_cache(maxsize=64)
def _insert_of(model: type[Base]) -> Insert:
    return insert(cast(Table, model.__table__))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside one writer; busy_timeout makes writers queue instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_sqlite(immediate: bool) -> Any:
    statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def begin(conn: Any) -> None:
        conn.exec_driver_sql(statement)

    return begin


def create_db_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    sqlite_immediate: bool = False,
    schema_changes: bool = False,
) -> Engine:
    """An engine configured for Zhongtai.

    On PostgreSQL its connections keep their prepared statements across rollbacks
    (:mod:`core.pg_connection`), except on an engine made for ``schema_changes`` (migrations).

    On SQLite the driver's own transaction handling is replaced by explicit BEGIN statements
    (the SQLAlchemy-documented recipe) so that transactions really are atomic; a *write* engine
    begins with ``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing on
    a read-to-write upgrade.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        event.listen(engine, "begin", _begin_sqlite(sqlite_immediate))
        return engine
    # No pre-ping: it costs a round trip per request. A connection found dead raises a
    # disconnect error, upon which SQLAlchemy invalidates the whole pool; recycling keeps
    # connections younger than typical server and proxy idle timeouts.
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)
    if not schema_changes and parsed.get_driver_name() == "psycopg":
        event.listen(engine, "do_connect", pg_connection.open_connection)
    return engine


@dataclass
class Database:
    """The engines and session factories of one database.

    ``reader`` sessions serve GET requests; ``writer`` sessions serve requests that change state.
    On PostgreSQL both share one pool, and readers run in autocommit: under READ COMMITTED each
    statement sees its own snapshot inside a transaction too, so BEGIN and ROLLBACK would only
    add two round trips. On SQLite the reader's transaction gives a WAL snapshot, and the
    writer begins IMMEDIATE.
    """

    url: str
    engine: Engine
    write_engine: Engine
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 10, max_overflow: int = 10) -> Database:
        engine = create_db_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        if engine.dialect.name == "sqlite":
            write_engine = create_db_engine(url, sqlite_immediate=True)
            read_engine = engine
        else:
            write_engine = engine
            read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(
            url=url,
            engine=engine,
            write_engine=write_engine,
            reader=sessionmaker(read_engine, expire_on_commit=False),
            writer=sessionmaker(write_engine, expire_on_commit=False),
        )

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
