"""The SQL statements a block of code sends: how tests count round trips and check what was
written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

T = TypeVar("T")


@contextmanager
def recorded_on(
    target: Connection | Engine, keep: Callable[[str, Any], T | None]
) -> Iterator[list[T]]:
    """``keep(statement, execution context)`` of each statement the block sends on ``target``,
    when not None."""
    sent: list[T] = []

    def record(_c: Any, _cursor: Any, statement: str, _params: Any, ctx: Any, _many: bool) -> None:
        kept = keep(statement, ctx)
        if kept is not None:
            sent.append(kept)

    event.listen(target, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(target, "before_cursor_execute", record)


@contextmanager
def statements_sent(target: Connection | Engine) -> Iterator[list[str]]:
    """The statements the block sends on ``target``, as sent."""
    with recorded_on(target, lambda statement, _ctx: statement) as sent:
        yield sent


@contextmanager
def statements_on(connection: Connection, session: Session) -> Iterator[list[str]]:
    """The statements the block sends through ``session`` on the test's ``connection``; the
    session's own savepoint begins before the block, so it is not counted."""
    session.connection()
    with statements_sent(connection) as sent:
        yield sent
