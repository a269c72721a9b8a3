"""Writes guarded by the database's unique constraints, answered as 409s naming the duplicate."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhongtai.core.errors import DomainError

T = TypeVar("T")


def added(session: Session, row: T) -> T:
    """A ``write`` for :func:`write_unique` that inserts one new row."""
    session.add(row)
    return row


def write_unique(
    session: Session, write: Callable[[], T], explain: Callable[[], DomainError | None]
) -> T:
    """Run ``write`` and flush it in a savepoint; on a constraint violation raise ``explain()``.

    The database decides (two requests racing for one code cannot both win). ``write`` must
    make its changes itself, inside the savepoint, so that a violation undoes only them and
    the request's transaction stays usable. ``explain`` runs after the rollback and looks up
    which code was taken, to name it; when it finds nothing, the original error propagates:
    that is a bug, not bad input.
    """
    try:
        with session.begin_nested():
            result = write()
            session.flush()
    except IntegrityError:
        conflict = explain()
        if conflict is None:
            raise
        raise conflict from None
    return result
