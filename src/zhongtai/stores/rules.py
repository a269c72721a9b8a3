"""Pure rules of the stores context: opening hours in local time, distances, pilot decisions."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import combinations
from zoneinfo import ZoneInfo, available_timezones

from zhongtai.core.clock import as_utc
from zhongtai.stores.models import PilotScope

SECONDS_PER_DAY = 24 * 3600
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
DEFAULT_HORIZON_DAYS = 28
EARTH_MEAN_RADIUS_M = 6_371_008.8
CHAIN_SCOPE_VALUE = "*"
FEATURE_PATTERN = re.compile(r"^[a-z][a-z0-9_.]{1,63}$")


# --- time zones ------------------------------------------------------------------------------


@cache
def _iana_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_timezone(name: str) -> bool:
    """True for an IANA time zone key such as ``Asia/Shanghai`` (case-sensitive)."""
    return name in _iana_zones()


# --- opening hours ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """Open from ``opens_at`` to ``closes_at`` local time.

    A ``closes_at`` at or before ``opens_at`` runs past midnight into the next day; equal times
    mean 24 hours.
    """

    opens_at: time
    closes_at: time

    @property
    def overnight(self) -> bool:
        return self.closes_at <= self.opens_at

    @property
    def seconds(self) -> int:
        length = _seconds(self.closes_at) - _seconds(self.opens_at)
        return length if length > 0 else length + SECONDS_PER_DAY


@dataclass(frozen=True)
class WeeklySpan:
    """A span that recurs every week on ``weekday`` (0 = Monday ... 6 = Sunday)."""

    weekday: int
    opens_at: time
    closes_at: time

    @property
    def span(self) -> Span:
        return Span(self.opens_at, self.closes_at)


@dataclass(frozen=True)
class DayException:
    """A dated exception that replaces that day's weekly spans; ``span`` None: closed all day."""

    on_date: date
    span: Span | None = None


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _wall(moment_utc: datetime, zone: ZoneInfo) -> datetime:
    return moment_utc.astimezone(zone).replace(tzinfo=None)


def first_instant_at(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the local clock shows ``wall`` or later.

    An ambiguous wall time (clocks go back) gives its first occurrence; a wall time that does not
    exist (clocks go forward) gives the instant the clocks jump.
    """
    early = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(early, late), max(early, late)
    if _wall(low, zone) == wall:
        return low
    # In a gap: the wall clock is monotonic between the two readings, so search the jump.
    lo, hi = 0, int((high - low).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        if _wall(low + timedelta(seconds=mid), zone) >= wall:
            hi = mid
        else:
            lo = mid + 1
    return low + timedelta(seconds=lo)


class OpeningSchedule:
    """Weekly spans plus dated exceptions of one location, read in its time zone.

    A span belongs to the day it opens: Friday 22:00-02:00 still serves Saturday 01:00, even when
    Saturday itself has an exception.
    """

    def __init__(
        self, weekly_hours: Iterable[WeeklySpan], exceptions: Iterable[DayException], timezone: str
    ) -> None:
        self.zone = ZoneInfo(timezone)
        self._weekly: dict[int, list[Span]] = {}
        for item in weekly_hours:
            self._weekly.setdefault(item.weekday, []).append(item.span)
        self._exceptions = {item.on_date: item for item in exceptions}

    def spans_on(self, day: date) -> list[Span]:
        exception = self._exceptions.get(day)
        if exception is not None:
            return [] if exception.span is None else [exception.span]
        return self._weekly.get(day.weekday(), [])

    def interval(self, day: date, span: Span) -> tuple[datetime, datetime]:
        """The UTC instants a span of ``day`` opens and closes."""
        closes_on = day + timedelta(days=1) if span.overnight else day
        return (
            first_instant_at(datetime.combine(day, span.opens_at), self.zone),
            first_instant_at(datetime.combine(closes_on, span.closes_at), self.zone),
        )

    def local_day(self, moment_utc: datetime) -> date:
        return _wall(as_utc(moment_utc), self.zone).date()

    def is_open_at(self, moment_utc: datetime) -> bool:
        moment = as_utc(moment_utc)
        today = self.local_day(moment)
        # Two days back covers overnight spans; a day ahead covers zones that jump at midnight.
        for offset in (-2, -1, 0, 1):
            day = today + timedelta(days=offset)
            for span in self.spans_on(day):
                opens, closes = self.interval(day, span)
                if opens <= moment < closes:
                    return True
        return False

    def next_opening(
        self, moment_utc: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS
    ) -> datetime | None:
        """The first instant at or after the moment when the location is open, None if not
        within ``horizon_days``. The moment itself when open then."""
        moment = as_utc(moment_utc)
        if self.is_open_at(moment):
            return moment
        today = self.local_day(moment)
        best: datetime | None = None
        for offset in range(-1, horizon_days + 1):
            day = today + timedelta(days=offset)
            if best is not None and day > self.local_day(best) + timedelta(days=1):
                break
            for span in self.spans_on(day):
                opens, _ = self.interval(day, span)
                if opens >= moment and (best is None or opens < best):
                    best = opens
        return best


def is_open_at(
    weekly_hours: Iterable[WeeklySpan],
    exceptions: Iterable[DayException],
    timezone: str,
    moment_utc: datetime,
) -> bool:
    """Whether the location is open at an instant, judged by its local clock."""
    return OpeningSchedule(weekly_hours, exceptions, timezone).is_open_at(moment_utc)


def next_opening(
    weekly_hours: Iterable[WeeklySpan],
    exceptions: Iterable[DayException],
    timezone: str,
    moment_utc: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> datetime | None:
    """When the location is next open (the moment itself if open now), None past the horizon."""
    schedule = OpeningSchedule(weekly_hours, exceptions, timezone)
    return schedule.next_opening(moment_utc, horizon_days)


def overlapping_spans(spans: Sequence[WeeklySpan]) -> tuple[WeeklySpan, WeeklySpan] | None:
    """The first two spans that overlap anywhere in the week, else None.

    Overnight spans count into the next morning, and Sunday night into Monday.
    """
    for a, b in combinations(spans, 2):
        a_start = a.weekday * SECONDS_PER_DAY + _seconds(a.opens_at)
        b_start = b.weekday * SECONDS_PER_DAY + _seconds(b.opens_at)
        for shift in (-SECONDS_PER_WEEK, 0, SECONDS_PER_WEEK):
            start = b_start + shift
            if a_start < start + b.span.seconds and start < a_start + a.span.seconds:
                return a, b
    return None


# --- geography -------------------------------------------------------------------------------


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle (haversine) distance between two points, in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lng2 - lng1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_MEAN_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def within_radius(lat1: float, lng1: float, lat2: float, lng2: float, radius_m: float) -> bool:
    """Whether the second point lies within ``radius_m`` metres of the first."""
    return distance_m(lat1, lng1, lat2, lng2) <= radius_m


# --- pilot rollout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PilotSwitch:
    """One pilot rule as the decision sees it."""

    feature: str
    scope: PilotScope
    scope_value: str
    enabled: bool


@dataclass(frozen=True)
class Decision:
    """Whether a feature is on, and which rule decided (to explain it to people)."""

    enabled: bool
    reason: str


def _on_off(enabled: bool) -> str:
    return "on" if enabled else "off"


def _location_decision(
    rules: Sequence[PilotSwitch], feature: str, store_id: uuid.UUID, region: str
) -> Decision:
    by_scope = {(r.scope, r.scope_value): r for r in rules}
    store = by_scope.get((PilotScope.STORE, str(store_id)))
    if store is not None:
        return Decision(
            store.enabled,
            f"store rule turns {feature} {_on_off(store.enabled)} for store {store_id}",
        )
    area = by_scope.get((PilotScope.REGION, region))
    if area is not None:
        return Decision(
            area.enabled, f"region rule turns {feature} {_on_off(area.enabled)} for region {region}"
        )
    chain = by_scope.get((PilotScope.CHAIN, CHAIN_SCOPE_VALUE))
    if chain is not None:
        return Decision(
            chain.enabled,
            f"chain rule turns {feature} {_on_off(chain.enabled)} for the whole chain",
        )
    return Decision(
        False,
        f"no pilot rule turns {feature} on for store {store_id}, region {region} or the chain",
    )


def _category_decision(
    rules: Sequence[PilotSwitch], feature: str, category_lineage: Sequence[uuid.UUID]
) -> Decision | None:
    by_category = {r.scope_value: r for r in rules if r.scope is PilotScope.CATEGORY}
    for depth, category_id in enumerate(category_lineage):
        rule = by_category.get(str(category_id))
        if rule is None:
            continue
        where = (
            f"category {category_id}"
            if depth == 0
            else f"category {category_lineage[0]} (set on its ancestor {category_id})"
        )
        return Decision(
            rule.enabled, f"category rule turns {feature} {_on_off(rule.enabled)} for {where}"
        )
    return None


def pilot_decision(
    rules: Iterable[PilotSwitch],
    *,
    feature: str,
    store_id: uuid.UUID,
    region: str,
    category_lineage: Sequence[uuid.UUID] = (),
) -> Decision:
    """Whether ``feature`` is on for a store (and a category, given as [self, parent, ..., root]).

    Location: a store rule beats a region rule beats a chain rule; no rule means off.
    Category: the nearest category rule along the lineage decides; none means allowed.
    The feature is on when the location says on and the category allows it.
    """
    relevant = [r for r in rules if r.feature == feature]
    location = _location_decision(relevant, feature, store_id, region)
    if not location.enabled:
        return location
    category = _category_decision(relevant, feature, category_lineage)
    if category is None:
        return location
    return Decision(category.enabled, f"{category.reason}; {location.reason}")


def require_capability(decision: Decision, *, feature: str, has_capability: bool) -> Decision:
    """A capability feature also needs the location to physically have the capability."""
    if not has_capability:
        return Decision(False, f"the location does not offer {feature} (pilot: {decision.reason})")
    return decision
