"""The demo's trading rhythm: busier weekends, lunch and evening peaks, trade only while open."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.demo import rhythm
from zhongtai.demo.sites import StoreFormat

SHANGHAI = "Asia/Shanghai"
A_MONDAY = date(2026, 9, 7)


def test_a_saturday_takes_more_orders_than_a_tuesday_week_after_week() -> None:
    rng = random.Random(1)
    weeks = range(20)
    saturdays = sum(
        rhythm.orders_on(rng, A_MONDAY + timedelta(weeks=w, days=5), StoreFormat.SUPERMARKET)
        for w in weeks
    )
    tuesdays = sum(
        rhythm.orders_on(rng, A_MONDAY + timedelta(weeks=w, days=1), StoreFormat.SUPERMARKET)
        for w in weeks
    )
    assert saturdays > 1.3 * tuesdays


def test_orders_peak_at_lunch_and_in_the_evening_and_dip_in_the_afternoon() -> None:
    moments = rhythm.moments_on(
        random.Random(2), A_MONDAY, rhythm.opening_hours(StoreFormat.SUPERMARKET), 5000, SHANGHAI
    )
    hours = Counter(m.astimezone(ZoneInfo(SHANGHAI)).hour for m in moments)
    assert hours[12] > 2 * hours[15] and hours[18] > 2 * hours[15]
    assert hours[12] > hours[9] and hours[18] > hours[21]


@given(
    seed=st.integers(0, 10_000),
    store_format=st.sampled_from(list(StoreFormat)),
    overnight=st.booleans(),
    day=st.dates(date(2025, 1, 1), date(2027, 12, 31)),
)
def test_every_order_falls_in_the_hours_the_store_trades_that_day(
    seed: int, store_format: StoreFormat, overnight: bool, day: date
) -> None:
    hours = rhythm.opening_hours(store_format, overnight=overnight)
    moments = rhythm.moments_on(random.Random(seed), day, hours, 40, SHANGHAI)
    assert moments == sorted(moments)
    for moment in moments:
        local = moment.astimezone(ZoneInfo(SHANGHAI))
        hour = local.hour + (24 if local.date() > day else 0)
        assert hour in hours


@given(seed=st.integers(0, 10_000))
def test_a_mix_only_ever_draws_its_own_keys_and_never_a_weightless_one(seed: int) -> None:
    rng = random.Random(seed)
    mix = {"app": 3, "marketplace": 0, "mini_program": 1}
    drawn = {rhythm.pick(rng, mix) for _ in range(50)}
    assert drawn <= {"app", "mini_program"}
