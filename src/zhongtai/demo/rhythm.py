"""The demo chain's trading rhythm: how many orders a store takes a day, at which hours, through
which channels and fulfilment types. Plain data and pure functions."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import TypeVar
from zoneinfo import ZoneInfo

from zhongtai.demo.sites import StoreFormat
from zhongtai.orders.kinds import FulfillmentType, SalesChannel, TenderType

T = TypeVar("T")

#: Monday … Sunday: Shanghai shops fill up on Friday evening and over the weekend.
WEEKDAY_FACTOR = (0.9, 0.86, 0.9, 0.95, 1.1, 1.35, 1.28)

#: Orders a store takes on an average weekday; small so that `zhongtai demo` loads in seconds.
DAILY_ORDERS: dict[StoreFormat, int] = {
    StoreFormat.SUPERMARKET: 15,
    StoreFormat.CONVENIENCE: 17,
    StoreFormat.DEPARTMENT: 8,
}

#: The part of a store's orders placed online (app, mini-program, marketplace, guide links).
ONLINE_SHARE: dict[StoreFormat, float] = {
    StoreFormat.SUPERMARKET: 0.33,
    StoreFormat.CONVENIENCE: 0.22,
    StoreFormat.DEPARTMENT: 0.3,
}

#: Relative demand per local hour of the day: breakfast, the lunch peak, the evening peak.
HOURLY_DEMAND: dict[int, float] = {
    0: 0.4, 1: 0.2, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.2, 6: 0.6, 7: 1.8, 8: 2.6, 9: 2.8,
    10: 3.4, 11: 6.0, 12: 7.5, 13: 5.0, 14: 3.0, 15: 3.0, 16: 3.8, 17: 6.4, 18: 8.0,
    19: 7.2, 20: 5.0, 21: 3.0, 22: 1.6, 23: 0.9,
}  # fmt: skip

#: Online orders by channel (a guide's share link opens in the mini-program).
ONLINE_CHANNELS: dict[SalesChannel, int] = {
    SalesChannel.APP: 38,
    SalesChannel.MINI_PROGRAM: 34,
    SalesChannel.MARKETPLACE: 20,
    SalesChannel.GUIDE_SHARE: 8,
}

#: Online orders by fulfilment type, among the types the store offers.
FULFILMENT_MIX: dict[FulfillmentType, int] = {
    FulfillmentType.DELIVERY: 58,
    FulfillmentType.PICKUP: 26,
    FulfillmentType.SHIP: 10,
    FulfillmentType.RESERVE_TRY: 6,
}

#: How customers pay at the till, and online.
TILL_TENDERS: dict[TenderType, int] = {
    TenderType.WECHAT_PAY: 44,
    TenderType.ALIPAY: 26,
    TenderType.CASH: 14,
    TenderType.BANK_CARD: 10,
    TenderType.STORED_VALUE: 6,
}
ONLINE_TENDERS: dict[TenderType, int] = {
    TenderType.WECHAT_PAY: 58,
    TenderType.ALIPAY: 30,
    TenderType.BANK_CARD: 7,
    TenderType.STORED_VALUE: 5,
}


def opening_hours(store_format: StoreFormat, *, overnight: bool = False) -> range:
    """The local hours a store trades on its business day; 24 and 25 are past midnight."""
    if store_format is StoreFormat.CONVENIENCE:
        return range(0, 24)
    if store_format is StoreFormat.DEPARTMENT:
        return range(10, 22)
    return range(8, 25 if overnight else 22)


def orders_on(rng: random.Random, day: date, store_format: StoreFormat) -> int:
    """Orders a store takes on ``day``: its format's average, the weekday's factor, some noise."""
    mean = DAILY_ORDERS[store_format] * WEEKDAY_FACTOR[day.weekday()]
    return max(0, round(mean * rng.uniform(0.8, 1.2)))


def moments_on(
    rng: random.Random, day: date, hours: Sequence[int], count: int, timezone: str
) -> list[datetime]:
    """``count`` UTC moments of the business day ``day``, spread by :data:`HOURLY_DEMAND`."""
    weights = [HOURLY_DEMAND[h % 24] for h in hours]
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))
    picked = rng.choices(list(hours), weights=weights, k=count)
    moments = [
        (start + timedelta(hours=h, seconds=rng.randrange(3600))).astimezone(UTC) for h in picked
    ]
    return sorted(moments)


def pick(rng: random.Random, mix: Mapping[T, int]) -> T:
    """One key of ``mix`` drawn by its weight."""
    keys, cumulative = _cumulative(tuple(mix.items()))
    chosen: T = rng.choices(keys, cum_weights=cumulative)[0]
    return chosen


@lru_cache(maxsize=64)
def _cumulative(items: tuple[tuple[T, int], ...]) -> tuple[list[T], list[int]]:
    # Mixes are a handful of constants drawn from thousands of times: add them up once.
    return [k for k, _ in items], list(accumulate(w for _, w in items))
