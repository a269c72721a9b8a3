"""Opening hours are read on the store's local clock: overnight spans, exceptions, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from zhongtai.stores.rules import (
    DayException,
    Span,
    WeeklySpan,
    first_instant_at,
    is_open_at,
    is_valid_timezone,
    next_opening,
    overlapping_spans,
)

SHANGHAI = "Asia/Shanghai"
BERLIN = "Europe/Berlin"
EVERY_DAY_9_TO_21 = [WeeklySpan(d, time(9), time(21)) for d in range(7)]
# 2025-06-06 is a Friday.
FRIDAY = date(2025, 6, 6)
SATURDAY = date(2025, 6, 7)


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    """A UTC instant given by a local wall-clock reading."""
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc]


def test_a_store_is_open_inside_its_span_and_closed_at_the_closing_minute() -> None:
    assert is_open_at(EVERY_DAY_9_TO_21, [], SHANGHAI, local(SHANGHAI, 2025, 6, 6, 9, 0))
    assert is_open_at(EVERY_DAY_9_TO_21, [], SHANGHAI, local(SHANGHAI, 2025, 6, 6, 20, 59))
    assert not is_open_at(EVERY_DAY_9_TO_21, [], SHANGHAI, local(SHANGHAI, 2025, 6, 6, 21, 0))
    assert not is_open_at(EVERY_DAY_9_TO_21, [], SHANGHAI, local(SHANGHAI, 2025, 6, 6, 8, 59))


def test_hours_are_read_in_the_store_time_zone_not_utc() -> None:
    # 02:00 UTC is 10:00 in Shanghai (open) and 04:00 in Berlin in summer (closed).
    moment = datetime(2025, 6, 6, 2, 0, tzinfo=UTC)
    assert is_open_at(EVERY_DAY_9_TO_21, [], SHANGHAI, moment)
    assert not is_open_at(EVERY_DAY_9_TO_21, [], BERLIN, moment)


def test_an_overnight_friday_span_serves_saturday_one_am() -> None:
    friday_night = [WeeklySpan(FRIDAY.weekday(), time(22), time(2))]
    assert is_open_at(friday_night, [], SHANGHAI, local(SHANGHAI, 2025, 6, 7, 1, 0))
    assert not is_open_at(friday_night, [], SHANGHAI, local(SHANGHAI, 2025, 6, 7, 2, 0))
    # Thursday night has no span: Friday 01:00 is closed.
    assert not is_open_at(friday_night, [], SHANGHAI, local(SHANGHAI, 2025, 6, 6, 1, 0))


def test_a_span_closing_at_its_opening_time_lasts_24_hours() -> None:
    always = [WeeklySpan(d, time(0), time(0)) for d in range(7)]
    for hour in range(24):
        assert is_open_at(always, [], SHANGHAI, local(SHANGHAI, 2025, 6, 6, hour, 30))


def test_a_closed_exception_replaces_the_day_but_not_the_previous_night() -> None:
    weekly = [WeeklySpan(d, time(9), time(2)) for d in range(7)]
    closed_saturday = [DayException(SATURDAY, None)]
    # Friday's span still runs into Saturday 01:00 ...
    assert is_open_at(weekly, closed_saturday, SHANGHAI, local(SHANGHAI, 2025, 6, 7, 1, 0))
    # ... but Saturday's own span is gone.
    assert not is_open_at(weekly, closed_saturday, SHANGHAI, local(SHANGHAI, 2025, 6, 7, 12, 0))
    # Closing Friday removes Friday's overnight span too.
    closed_friday = [DayException(FRIDAY, None)]
    assert not is_open_at(weekly, closed_friday, SHANGHAI, local(SHANGHAI, 2025, 6, 7, 1, 0))


def test_special_hours_replace_the_weekly_spans_of_that_date_only() -> None:
    short_day = [DayException(FRIDAY, Span(time(12), time(15)))]
    assert not is_open_at(EVERY_DAY_9_TO_21, short_day, SHANGHAI, local(SHANGHAI, 2025, 6, 6, 10))
    assert is_open_at(EVERY_DAY_9_TO_21, short_day, SHANGHAI, local(SHANGHAI, 2025, 6, 6, 13))
    assert not is_open_at(EVERY_DAY_9_TO_21, short_day, SHANGHAI, local(SHANGHAI, 2025, 6, 6, 16))
    assert is_open_at(EVERY_DAY_9_TO_21, short_day, SHANGHAI, local(SHANGHAI, 2025, 6, 7, 10))


def test_next_opening_is_the_moment_itself_when_open() -> None:
    moment = local(SHANGHAI, 2025, 6, 6, 10, 15)
    assert next_opening(EVERY_DAY_9_TO_21, [], SHANGHAI, moment) == moment


def test_next_opening_before_and_after_the_day_span() -> None:
    early = local(SHANGHAI, 2025, 6, 6, 7, 0)
    late = local(SHANGHAI, 2025, 6, 6, 21, 30)
    assert next_opening(EVERY_DAY_9_TO_21, [], SHANGHAI, early) == local(SHANGHAI, 2025, 6, 6, 9)
    assert next_opening(EVERY_DAY_9_TO_21, [], SHANGHAI, late) == local(SHANGHAI, 2025, 6, 7, 9)


def test_next_opening_skips_closed_days_and_uses_special_hours() -> None:
    exceptions = [
        DayException(SATURDAY, None),
        DayException(date(2025, 6, 8), Span(time(11), time(16))),
    ]
    late_friday = local(SHANGHAI, 2025, 6, 6, 22, 0)
    assert next_opening(EVERY_DAY_9_TO_21, exceptions, SHANGHAI, late_friday) == local(
        SHANGHAI, 2025, 6, 8, 11
    )


def test_next_opening_is_none_for_a_location_without_hours() -> None:
    assert next_opening([], [], SHANGHAI, local(SHANGHAI, 2025, 6, 6, 10)) is None


def test_berlin_opening_times_follow_summer_and_winter_time() -> None:
    winter = next_opening(EVERY_DAY_9_TO_21, [], BERLIN, datetime(2025, 1, 15, 0, 0, tzinfo=UTC))
    summer = next_opening(EVERY_DAY_9_TO_21, [], BERLIN, datetime(2025, 7, 15, 0, 0, tzinfo=UTC))
    assert winter == datetime(2025, 1, 15, 8, 0, tzinfo=UTC)
    assert summer == datetime(2025, 7, 15, 7, 0, tzinfo=UTC)


def test_a_span_opening_in_the_spring_forward_gap_opens_when_clocks_jump() -> None:
    # 2025-03-30: Berlin clocks go from 02:00 CET straight to 03:00 CEST (01:00 UTC).
    sunday = [WeeklySpan(6, time(2, 30), time(5))]
    saturday_evening = datetime(2025, 3, 29, 20, 0, tzinfo=UTC)
    assert next_opening(sunday, [], BERLIN, saturday_evening) == datetime(
        2025, 3, 30, 1, 0, tzinfo=UTC
    )
    assert not is_open_at(sunday, [], BERLIN, datetime(2025, 3, 30, 0, 59, 59, tzinfo=UTC))
    assert is_open_at(sunday, [], BERLIN, datetime(2025, 3, 30, 1, 0, tzinfo=UTC))


def test_an_overnight_span_over_the_autumn_change_lasts_an_hour_longer() -> None:
    # 2025-10-26: Berlin clocks go back from 03:00 CEST to 02:00 CET.
    saturday_night = [WeeklySpan(5, time(22), time(6))]
    opens = local(BERLIN, 2025, 10, 25, 22)
    assert next_opening(saturday_night, [], BERLIN, opens - timedelta(hours=1)) == opens
    assert opens == datetime(2025, 10, 25, 20, 0, tzinfo=UTC)
    assert is_open_at(saturday_night, [], BERLIN, datetime(2025, 10, 26, 4, 59, tzinfo=UTC))
    assert not is_open_at(saturday_night, [], BERLIN, datetime(2025, 10, 26, 5, 0, tzinfo=UTC))


def test_a_span_ending_inside_the_repeated_hour_ends_at_its_first_occurrence() -> None:
    sunday = [WeeklySpan(6, time(1), time(2, 30))]
    assert is_open_at(sunday, [], BERLIN, local(BERLIN, 2025, 10, 26, 2, 15, fold=0))
    assert not is_open_at(sunday, [], BERLIN, local(BERLIN, 2025, 10, 26, 2, 15, fold=1))


def test_first_instant_at_an_ambiguous_time_is_its_first_occurrence() -> None:
    zone = ZoneInfo(BERLIN)
    wall = datetime(2025, 10, 26, 2, 30)
    assert first_instant_at(wall, zone) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)


def test_time_zone_names_must_be_iana_keys() -> None:
    assert is_valid_timezone("Asia/Shanghai")
    assert is_valid_timezone("Europe/Berlin")
    for bad in ("", "Mars/Base", "asia/shanghai", "../etc/passwd", "/etc/localtime", "+08:00"):
        assert not is_valid_timezone(bad), bad


def test_overlaps_are_found_across_midnight_and_across_the_week_end() -> None:
    friday_night = WeeklySpan(4, time(22), time(2))
    saturday_early = WeeklySpan(5, time(1), time(9))
    saturday_later = WeeklySpan(5, time(2), time(9))
    sunday_night = WeeklySpan(6, time(23), time(3))
    monday_early = WeeklySpan(0, time(2), time(8))
    assert overlapping_spans([friday_night, saturday_early]) == (friday_night, saturday_early)
    assert overlapping_spans([friday_night, saturday_later]) is None
    assert overlapping_spans([sunday_night, monday_early]) == (sunday_night, monday_early)
    assert overlapping_spans(EVERY_DAY_9_TO_21) is None


# --- properties ------------------------------------------------------------------------------

minutes = st.integers(min_value=0, max_value=24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
weekly_spans = st.lists(
    st.builds(WeeklySpan, st.integers(min_value=0, max_value=6), minutes, minutes), max_size=8
)
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31))
exceptions = st.lists(
    st.builds(DayException, days, st.none() | st.builds(Span, minutes, minutes)),
    max_size=6,
    unique_by=lambda e: e.on_date,
)
moments = st.datetimes(
    min_value=datetime(2024, 1, 3), max_value=datetime(2026, 12, 28), timezones=st.just(UTC)
).map(lambda m: m.replace(microsecond=0))


def reference_open(weekly: list[WeeklySpan], dated: list[DayException], wall: datetime) -> bool:
    """An independent reading on a clock without DST: wall-clock arithmetic only."""
    by_date = {e.on_date: e for e in dated}
    for day in (wall.date() - timedelta(days=1), wall.date()):
        if day in by_date:
            exception = by_date[day]
            spans = [] if exception.span is None else [exception.span]
        else:
            spans = [w.span for w in weekly if w.weekday == day.weekday()]
        for span in spans:
            start = datetime.combine(day, span.opens_at)
            end_day = day + timedelta(days=1) if span.overnight else day
            if start <= wall < datetime.combine(end_day, span.closes_at):
                return True
    return False


@given(weekly_spans, exceptions, moments)
def test_in_shanghai_openness_matches_plain_wall_clock_arithmetic(
    weekly: list[WeeklySpan], dated: list[DayException], moment: datetime
) -> None:
    wall = moment.astimezone(ZoneInfo(SHANGHAI)).replace(tzinfo=None)
    assert is_open_at(weekly, dated, SHANGHAI, moment) == reference_open(weekly, dated, wall)


@settings(max_examples=200)
@given(
    weekly_spans,
    exceptions,
    moments,
    st.sampled_from([SHANGHAI, BERLIN]),
    st.floats(min_value=0, max_value=1),
)
def test_next_opening_is_open_and_nothing_earlier_is(
    weekly: list[WeeklySpan],
    dated: list[DayException],
    moment: datetime,
    zone: str,
    fraction: float,
) -> None:
    found = next_opening(weekly, dated, zone, moment)
    if found is None:
        return
    assert found >= moment
    assert is_open_at(weekly, dated, zone, found)
    if found > moment:
        assert not is_open_at(weekly, dated, zone, moment)
        before = found - timedelta(seconds=1)
        assert before < moment or not is_open_at(weekly, dated, zone, before)
        between = moment + (found - moment) * fraction
        assert between >= found or not is_open_at(weekly, dated, zone, between)


@given(weekly_spans, moments)
def test_a_store_with_weekly_hours_opens_within_a_week(
    weekly: list[WeeklySpan], moment: datetime
) -> None:
    found = next_opening(weekly, [], SHANGHAI, moment)
    assert (found is None) == (not weekly)
    if found is not None:
        assert found - moment <= timedelta(days=7)


@given(weekly_spans, days, moments)
def test_a_closed_day_leaves_only_the_previous_night_open(
    weekly: list[WeeklySpan], closed_day: date, moment: datetime
) -> None:
    zone = ZoneInfo(SHANGHAI)
    moment = datetime.combine(closed_day, moment.astimezone(zone).time(), zone).astimezone(UTC)
    closed = [DayException(closed_day, None)]
    if is_open_at(weekly, closed, SHANGHAI, moment):
        previous = (closed_day - timedelta(days=1)).weekday()
        assert any(w.weekday == previous and w.span.overnight for w in weekly)


def week_minutes(span: WeeklySpan) -> set[int]:
    start = span.weekday * 1440 + span.opens_at.hour * 60 + span.opens_at.minute
    return {(start + m) % (7 * 1440) for m in range(span.span.seconds // 60)}


@given(weekly_spans)
def test_overlap_check_agrees_with_the_minutes_each_span_covers(spans: list[WeeklySpan]) -> None:
    covered = [week_minutes(s) for s in spans]
    disjoint = all(
        not covered[i] & covered[j] for i in range(len(spans)) for j in range(i + 1, len(spans))
    )
    assert (overlapping_spans(spans) is None) == disjoint
