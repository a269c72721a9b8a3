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
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

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


def _decode(cursor: str, keys: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(keys):
            raise ValueError("shape")
        values: list[Any] = []
        for key, value in zip(keys, raw, strict=True):
            kind = key.type.python_type
            if kind is uuid.UUID:
                values.append(uuid.UUID(value))
            elif kind is datetime:
                values.append(datetime.fromisoformat(value))
            elif isinstance(value, kind):
                values.append(value)
            else:
                raise ValueError("type")
        return values
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, NotImplementedError):
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
        stmt = stmt.where(tuple_(*keys) > tuple_(*values))
    rows = list(session.scalars(stmt.order_by(*keys).limit(params.limit + 1)))
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    last = rows[-1]
    return rows, _encode([getattr(last, key.key) for key in keys])
