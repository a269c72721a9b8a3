"""Finding members by a tag: the condition "her tags hold exactly this one", decided by the
database's JSON functions rather than by matching the column's text.

A member's tags are a JSON list whose text differs with who wrote it: SQLAlchemy escapes every
character outside ASCII (``["\\u9ad8\\u7aef"]``), imports and earlier versions may have kept
the characters themselves (``["高端"]``). Both decode to the same tags, so both match, whatever
the row's age and without rewriting it. A tag is compared whole: no wildcards, no parts.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, cast, exists, func, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from zhongtai.members.models import Member


def has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    """True for a member whose tags include ``tag`` (exactly), on PostgreSQL and SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        # jsonb decodes the escapes; containment of a one-tag list is an exact element match
        # (and false, not an error, for a value that is no list).
        return cast(Member.tags, JSONB).contains([tag])
    elements = func.json_each(Member.tags).table_valued("value", "type")
    return exists(
        select(literal_column("1"))
        .select_from(elements)
        .where(elements.c.type == "text", elements.c.value == tag)
    )
