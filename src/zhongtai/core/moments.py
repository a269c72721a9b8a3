"""Moments a client or a file hands in: aware datetimes inside a calendar every reckoning survives.

``datetime`` runs from year 1 to 9999, and a moment near either end breaks later, far from
where it came in: ``0001-01-01T00:00+08:00`` does not exist in UTC, a week added to 9999-12-31
overflows, and the databases store or compare such values differently (a 500, or a garbled
price window). A moment is refused on the way in instead, naming the field it came in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

#: The calendar a moment must lie in (UTC; the end excluded): wider than any price window,
#: opening hours or report anyone sets, and far enough inside year 1 and 9999 that weeks and
#: time zones either side of a moment still exist.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
NEEDS_AN_OFFSET = "must include a UTC offset"
OFF_THE_CALENDAR = f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)"


def calendar_moment(value: datetime) -> datetime:
    """``value`` if it carries a UTC offset and lies between EARLIEST and LATEST; ValueError
    saying which it lacks otherwise (in a pydantic model, a 422 naming the field)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(NEEDS_AN_OFFSET)
    try:
        inside = EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:  # it has no UTC counterpart: before year 1 or after 9999 there
        inside = False
    if not inside:
        raise ValueError(OFF_THE_CALENDAR)
    return value


#: A moment as every endpoint takes one: ISO 8601 with an offset, inside the calendar.
Moment = Annotated[AwareDatetime, AfterValidator(calendar_moment)]
