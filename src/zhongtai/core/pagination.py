"""Cursor (keyset) pagination for every list endpoint: stable under inserts, fast at any depth."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Select, SmallInteger, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import TypeDecorator, TypeEngine

from zhongtai.core.clock import as_utc
from zhongtai.core.errors import InvalidInput

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT


def page_params(
    cursor: str | None = Query(None, description="Opaque cursor from the previous page."),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page."),
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


def _encode(values: Sequence[Any]) -> str:
    plain = [
        v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v
        for v in values
    ]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def _key_type(key: InstrumentedAttribute[Any]) -> TypeEngine[Any]:
    """A key's column type as the database holds it (a decorated type's underlying one)."""
    column_type = key.type
    return column_type.impl_instance if isinstance(column_type, TypeDecorator) else column_type


def _key_kind(column_type: TypeEngine[Any]) -> type:
    """The python type of a key's column, one of the kinds a cursor can carry. Another kind
    is a list written wrong (a 500 that says so), not a client's mistake."""
    kind = column_type.python_type
    if kind not in (uuid.UUID, datetime, str, int, bool):
        raise TypeError(f"cannot page on a {column_type} key (python type {kind.__name__})")
    return kind


def _integer_bits(column_type: TypeEngine[Any]) -> int:
    """How wide an integer the column holds on PostgreSQL (int2, int4, int8)."""
    if isinstance(column_type, SmallInteger):
        return 16
    if isinstance(column_type, BigInteger):
        return 64
    return 32


def _cursor_value(column_type: TypeEngine[Any], kind: type, value: Any) -> Any:
    """``value`` as the database can bind and compare it with a key of ``column_type``;
    ValueError for anything a list never handed out, refused before it reaches the database."""
    if kind is bool or kind is int:
        # type(), not isinstance: True is an int to isinstance, and 1 is no bool.
        if type(value) is not kind:
            raise ValueError("not a value of the key's kind")
        if kind is int:
            half = 2 ** (_integer_bits(column_type) - 1)
            if not -half <= value < half:
                raise ValueError("wider than the key's column")
        return value
    if not isinstance(value, str):
        raise ValueError("not a string")
    if "\x00" in value:
        raise ValueError("NUL")  # PostgreSQL text cannot hold it
    value.encode()  # a lone surrogate (JSON allows one) has no UTF-8: UnicodeEncodeError
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("no offset")  # which moment it is would be the database's guess
        return as_utc(moment)  # OverflowError past year 1 or 9999 in UTC
    return value


def _decode(cursor: str, keys: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    types = [_key_type(key) for key in keys]
    kinds = [_key_kind(column_type) for column_type in types]
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(keys):
            raise ValueError("shape")
        return [
            _cursor_value(column_type, kind, value)
            for column_type, kind, value in zip(types, kinds, raw, strict=True)
        ]
    # RecursionError: JSON nested deeper than the parser goes, which no cursor is.
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise InvalidInput.field("cursor", "is not a cursor this list handed out") from None


def paginate(
    session: Session,
    stmt: Select[Any],
    keys: Sequence[InstrumentedAttribute[Any]],
    params: PageParams,
) -> tuple[list[Any], str | None]:
    """Rows of ``stmt`` after the cursor, ordered by ``keys`` (the last must be unique)."""
    if params.cursor:
        values = _decode(params.cursor, keys)
        # Bound as the keys' own types, so a moment is compared as the column stores it.
        bound = [literal(value, key.type) for key, value in zip(keys, values, strict=True)]
        stmt = stmt.where(tuple_(*keys) > tuple_(*bound))
    rows = list(session.scalars(stmt.order_by(*keys).limit(params.limit + 1)))
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    last = rows[-1]
    return rows, _encode([getattr(last, key.key) for key in keys])
