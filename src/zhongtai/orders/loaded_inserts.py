"""New rows of the checkout written with one Core INSERT per table and kept in the session as
though they had been read back."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, Table, insert, inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from zhongtai.core.db import Base


@lru_cache(maxsize=8)
def _shape(cls: type[Base]) -> tuple[Insert, Insert, tuple[tuple[str, str], ...]]:
    """The INSERTs of the class's table for one row and for many, built once, and (attribute,
    column) of every column.

    The one for many returns the primary key: SQLAlchemy then sends a group as multi-row
    VALUES ("insertmanyvalues"), one statement however many rows (in pages of 1,000), compiled
    once and cached. Without RETURNING, psycopg's executemany runs a statement per row."""
    mapper = inspect(cls)
    table: Table = mapper.local_table  # type: ignore[assignment]
    pairs = tuple((prop.key, prop.columns[0].key) for prop in mapper.column_attrs)
    return insert(table), insert(table).returning(*table.primary_key.columns), pairs


def _row(instance: Base, pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    values = instance.__dict__
    try:
        return {column: values[attribute] for attribute, column in pairs}
    except KeyError as unset:
        # A column left to its default would be expired once attached and read back by a
        # SELECT on first use: the caller sets every column, defaults included.
        raise RuntimeError(f"{type(instance).__name__}.{unset.args[0]} is not set") from None


def insert_as_loaded(session: Session, *groups: Sequence[Base]) -> None:
    """INSERT each group (new instances of one class, parents before their children) in one
    statement, then put every instance in the session as persistent and unchanged.

    Why: on the checkout's hot path the unit of work (change tracking, dependency sorting,
    history per attribute) costs more CPU than the INSERTs themselves, and these rows are
    only ever written whole. Afterwards the session treats the instances as loaded rows: a
    later change to one is flushed as an UPDATE, as for any other.
    """
    connection = session.connection()
    for group in groups:
        if not group:
            continue
        one, many, pairs = _shape(type(group[0]))
        rows = [_row(x, pairs) for x in group]
        if len(rows) == 1:
            connection.execute(one, rows[0])
        else:
            connection.execute(many, rows)
    # Children first: attaching a parent cascades to its loaded collections, which must
    # already be detached rather than new (new ones would be INSERTed again at the flush).
    for group in reversed(groups):
        for instance in group:
            make_transient_to_detached(instance)
    for group in groups:
        for instance in group:
            session.add(instance)
