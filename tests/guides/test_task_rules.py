"""Specification of the guide's daily task rules: which tasks a customer is due, why, how urgent,
and which occurrence each task stands for."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.guides.member_facts import (
    BoughtCategory,
    ExpiringPoints,
    LateOrder,
    MemberFacts,
    NewArrival,
    RecentReturn,
    WaitingPickup,
)
from zhongtai.guides.new_arrival_rules import pick_new_arrivals
from zhongtai.guides.task_kinds import (
    EXPLANATION_MAX,
    MARKETING_KINDS,
    PRIORITY,
    TaskKind,
    TaskPolicy,
)
from zhongtai.guides.task_rules import due_tasks, next_birthday
from zhongtai.guides.task_states import CloseVerdict, TaskOutcome, TaskStatus, close_verdict

TODAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
MEMBER = uuid.UUID(int=7)
STORE = uuid.UUID(int=1)
TOPS, SHOES, TEA = (uuid.UUID(int=n) for n in (301, 302, 303))


def facts(**kw: Any) -> MemberFacts:
    return MemberFacts(member_id=MEMBER, **kw)


def due(member: MemberFacts, **kw: Any) -> list[Any]:
    kw.setdefault("today", TODAY)
    kw.setdefault("now", NOW)
    return due_tasks(member, **kw)


def kinds(member: MemberFacts, **kw: Any) -> list[TaskKind]:
    return [t.kind for t in due(member, **kw)]


def pickup(hours_ago: float, order: int = 1) -> WaitingPickup:
    since = NOW - timedelta(hours=hours_ago)
    return WaitingPickup(
        uuid.UUID(int=order), f"PU-{order}", STORE, since, since + timedelta(days=3)
    )


def returned(days_ago: int, n: int = 1) -> RecentReturn:
    return RecentReturn(
        uuid.UUID(int=900 + n),
        uuid.UUID(int=800 + n),
        f"O-{n}",
        TODAY - timedelta(days=days_ago),
        12950,
        "too small",
    )


def arrival(
    product: int,
    *,
    category: uuid.UUID = TOPS,
    days_old: int = 2,
    size: str | None = None,
    brand: str | None = "申城衣橱",
    sku: int | None = None,
) -> NewArrival:
    n = sku if sku is not None else product * 10
    return NewArrival(
        sku_id=uuid.UUID(int=10_000 + n),
        sku_code=f"SKU{n:05d}",
        sku_name=f"商品 {product} {size or ''}".strip(),
        size=size,
        product_id=uuid.UUID(int=20_000 + product),
        product_name=f"商品 {product}",
        brand=brand,
        category_id=category,
        category_name={TOPS: "T恤", SHOES: "女鞋", TEA: "茶叶"}[category],
        created_on=TODAY - timedelta(days=days_old),
    )


def bought(category: uuid.UUID, days_ago: int) -> BoughtCategory:
    name = {TOPS: "T恤", SHOES: "女鞋", TEA: "茶叶"}[category]
    return BoughtCategory(category, name, TODAY - timedelta(days=days_ago))


# --- pickup and after-sale -------------------------------------------------------------------


def test_an_order_waiting_more_than_a_day_at_the_counter_is_a_pickup_task() -> None:
    [task] = due(facts(pickups=(pickup(25, order=42),)))
    assert task.kind is TaskKind.PICKUP_WAITING
    assert task.period_key == f"pickup_waiting:{uuid.UUID(int=42)}"
    assert "PU-42" in task.explanation and "25 hours" in task.explanation
    assert task.details["order_number"] == "PU-42"
    assert task.details["collect_by"] == (NOW + timedelta(hours=72 - 25)).isoformat()


def test_an_order_ready_for_exactly_24_hours_is_not_nagged_about_yet() -> None:
    assert kinds(facts(pickups=(pickup(24),))) == []


def late(found_hours_ago: float, status: str = "completed", order: int = 7) -> LateOrder:
    found = NOW - timedelta(hours=found_hours_ago)
    return LateOrder(
        uuid.UUID(int=order),
        f"LT-{order}",
        STORE,
        "delivery",
        found - timedelta(minutes=1),
        found,
        status,
    )


def test_an_order_that_came_late_is_a_task_to_say_sorry_and_where_it_stands() -> None:
    [came, coming] = due(facts(late_orders=(late(3), late(1, "out_for_delivery", order=8))))
    assert (came.kind, came.priority) == (TaskKind.LATE_ORDER, 1)
    assert came.period_key == f"late_order:{uuid.UUID(int=7)}"
    assert came.explanation == (
        "Order LT-7 missed the time she was promised: say sorry; it has reached her since."
    )
    assert "the rider is on the way" in coming.explanation
    assert coming.details["status"] == "out_for_delivery"


def test_a_late_order_is_a_service_task_kept_without_marketing_consent_and_only_for_two_days() -> (
    None
):
    withdrawn = facts(late_orders=(late(47), late(49, order=9)), marketing_consent=False)
    assert [t.details["order_number"] for t in due(withdrawn)] == ["LT-7"]


def test_each_waiting_order_is_its_own_task() -> None:
    tasks = due(facts(pickups=(pickup(30, order=1), pickup(48, order=2))))
    assert len({t.period_key for t in tasks}) == 2


def test_a_return_in_the_last_three_days_asks_for_a_follow_up() -> None:
    [task] = due(facts(returns=(returned(3),)))
    assert task.kind is TaskKind.AFTER_SALE
    assert task.period_key == f"after_sale:{uuid.UUID(int=901)}"
    assert "¥129.50" in task.explanation and "too small" in task.explanation


def test_a_return_four_days_ago_is_no_longer_followed_up() -> None:
    assert kinds(facts(returns=(returned(4),))) == []


def test_waiting_pickups_and_returns_come_before_every_other_task() -> None:
    member = facts(
        birthday=date(1990, 11, 28),
        last_purchase_on=TODAY - timedelta(days=90),
        points=(ExpiringPoints(500, TODAY + timedelta(days=2)),),
        pickups=(pickup(30),),
        returns=(returned(1),),
        bought_categories=(bought(TOPS, 90),),
    )
    assert kinds(member, arrivals=[arrival(1)]) == [
        TaskKind.PICKUP_WAITING,
        TaskKind.AFTER_SALE,
        TaskKind.POINTS_EXPIRING,
        TaskKind.BIRTHDAY,
        TaskKind.DORMANT,
        TaskKind.NEW_ARRIVALS,
    ]


# --- points ----------------------------------------------------------------------------------


def test_points_expiring_within_two_weeks_say_how_many_and_when() -> None:
    member = facts(
        points=(
            ExpiringPoints(300, TODAY + timedelta(days=14)),
            ExpiringPoints(800, TODAY + timedelta(days=3)),
            ExpiringPoints(0, TODAY + timedelta(days=1)),  # spent: nothing to lose
            ExpiringPoints(999, TODAY + timedelta(days=15)),  # later than the window
        )
    )
    [task] = due(member)
    assert task.kind is TaskKind.POINTS_EXPIRING
    assert task.details["points"] == 1100
    assert task.period_key == "points_expiring:2026-11-29"
    assert "1100 of her points expire by 2026-12-10, 800 of them on 2026-11-29" in (
        task.explanation
    )


def test_points_that_expire_today_still_count() -> None:
    [task] = due(facts(points=(ExpiringPoints(50, TODAY),)))
    assert task.details["points"] == 50


# --- birthday --------------------------------------------------------------------------------


def test_a_birthday_within_a_week_is_due_whatever_the_birth_year() -> None:
    [task] = due(facts(birthday=date(1988, 12, 3)))
    assert task.kind is TaskKind.BIRTHDAY
    assert task.period_key == "birthday:2026"
    assert task.details == {"birthday_on": "2026-12-03", "days_to_go": 7}


def test_a_birthday_eight_days_away_is_not_due_yet() -> None:
    assert kinds(facts(birthday=date(1988, 12, 4))) == []


def test_a_birthday_just_after_new_year_belongs_to_the_year_it_falls_in() -> None:
    [task] = due(facts(birthday=date(1990, 1, 2)), today=date(2026, 12, 28))
    assert task.period_key == "birthday:2027"
    assert task.details["birthday_on"] == "2027-01-02"


def test_a_birthday_that_passed_yesterday_waits_for_next_year() -> None:
    assert kinds(facts(birthday=date(1990, 11, 25))) == []


def test_a_29_february_birthday_is_kept_on_28_february_in_common_years() -> None:
    assert next_birthday(date(2000, 2, 29), date(2027, 2, 20)) == date(2027, 2, 28)
    assert next_birthday(date(2000, 2, 29), date(2028, 2, 20)) == date(2028, 2, 29)
    assert next_birthday(date(2000, 2, 29), date(2027, 3, 1)) == date(2028, 2, 29)
    [task] = due(facts(birthday=date(2000, 2, 29)), today=date(2027, 2, 28))
    assert task.details == {"birthday_on": "2027-02-28", "days_to_go": 0}
    assert "today" in task.explanation


# --- dormant ---------------------------------------------------------------------------------


def test_a_member_who_never_bought_is_not_dormant() -> None:
    assert kinds(facts(last_purchase_on=None)) == []


def test_sixty_days_without_a_purchase_make_her_dormant_keyed_by_her_last_purchase() -> None:
    [task] = due(facts(last_purchase_on=TODAY - timedelta(days=60)))
    assert task.kind is TaskKind.DORMANT
    assert task.period_key == "dormant:2026-09-27"
    assert task.details == {"last_purchase_on": "2026-09-27", "days_since": 60}


def test_fifty_nine_days_without_a_purchase_is_not_dormant_yet() -> None:
    assert kinds(facts(last_purchase_on=TODAY - timedelta(days=59))) == []


# --- new arrivals ----------------------------------------------------------------------------


def test_new_products_in_a_category_she_bought_from_are_suggested_with_the_reason() -> None:
    member = facts(bought_categories=(bought(TOPS, 40),))
    [task] = due(member, arrivals=[arrival(1), arrival(2, category=SHOES, brand=None)])
    assert task.kind is TaskKind.NEW_ARRIVALS
    assert task.period_key == "new_arrivals:2026-W48"
    assert [s["product_name"] for s in task.details["skus"]] == ["商品 1"]
    assert task.details["skus"][0]["why"] == ["she bought T恤 on 2026-10-17"]


def test_a_category_she_last_bought_from_over_180_days_ago_is_no_longer_hers() -> None:
    member = facts(bought_categories=(bought(TOPS, 181),))
    assert kinds(member, arrivals=[arrival(1)]) == []


def test_products_older_than_two_weeks_are_not_new() -> None:
    member = facts(bought_categories=(bought(TOPS, 10),))
    assert kinds(member, arrivals=[arrival(1, days_old=15)]) == []
    assert kinds(member, arrivals=[arrival(1, days_old=14)]) == [TaskKind.NEW_ARRIVALS]


def test_a_preference_naming_the_brand_recommends_a_product_of_another_category() -> None:
    member = facts(preferences={"favourite_brand": "梧桐里"})
    [task] = due(member, arrivals=[arrival(1, category=SHOES, brand="梧桐里"), arrival(2)])
    assert [s["product_name"] for s in task.details["skus"]] == ["商品 1"]
    assert task.details["skus"][0]["why"] == ["her preference favourite_brand: 梧桐里"]


def test_her_size_chooses_the_sku_but_a_size_alone_recommends_nothing() -> None:
    skus = [arrival(1, size=s, sku=n) for n, s in enumerate(["S", "M", "L"], start=1)]
    assert kinds(facts(preferences={"top_size": "M"}), arrivals=skus) == []
    member = facts(preferences={"top_size": "m"}, bought_categories=(bought(TOPS, 5),))
    [task] = due(member, arrivals=skus)
    assert [(s["size"], s["in_her_size"]) for s in task.details["skus"]] == [("M", True)]


def test_at_most_three_skus_one_per_product_the_best_reasons_first() -> None:
    member = facts(
        bought_categories=(bought(TOPS, 5), bought(SHOES, 5)),
        preferences={"brand": "梧桐里"},
    )
    arrivals = [
        arrival(1, days_old=1),
        arrival(2, days_old=3),
        arrival(3, days_old=2, category=SHOES, brand="梧桐里"),
        arrival(4, days_old=0),
        arrival(4, days_old=0, sku=41),
    ]
    picks = pick_new_arrivals(member, arrivals, TODAY)
    assert [p.arrival.product_name for p in picks] == ["商品 3", "商品 4", "商品 1"]


# --- consent ---------------------------------------------------------------------------------


LOUD_MEMBER = {
    "birthday": date(1990, 11, 30),
    "last_purchase_on": TODAY - timedelta(days=100),
    "bought_categories": (bought(TOPS, 100),),
    "pickups": (pickup(30),),
    "late_orders": (late(3),),
    "returns": (returned(0),),
    "points": (ExpiringPoints(10, TODAY),),
}


def test_a_member_who_withdrew_her_wecom_consent_gets_service_tasks_only() -> None:
    got = kinds(facts(**LOUD_MEMBER, marketing_consent=False), arrivals=[arrival(1)])
    assert got == [
        TaskKind.LATE_ORDER,
        TaskKind.PICKUP_WAITING,
        TaskKind.AFTER_SALE,
        TaskKind.POINTS_EXPIRING,
    ]


def test_a_member_never_asked_gets_marketing_tasks_unless_the_chain_asks_for_consent() -> None:
    member = facts(**LOUD_MEMBER, marketing_consent=None)
    assert set(kinds(member, arrivals=[arrival(1)])) == set(TaskKind)
    strict = TaskPolicy(marketing_needs_granted_consent=True)
    assert not set(kinds(member, arrivals=[arrival(1)], policy=strict)) & MARKETING_KINDS
    granted = facts(**LOUD_MEMBER, marketing_consent=True)
    assert set(kinds(granted, arrivals=[arrival(1)], policy=strict)) == set(TaskKind)


# --- policy, inputs, closing -----------------------------------------------------------------


def test_the_thresholds_are_the_policys() -> None:
    member = facts(last_purchase_on=TODAY - timedelta(days=30), pickups=(pickup(5),))
    assert kinds(member) == []
    eager = TaskPolicy(dormant_after_days=30, pickup_waiting_hours=4)
    assert kinds(member, policy=eager) == [TaskKind.PICKUP_WAITING, TaskKind.DORMANT]


def test_a_policy_with_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="dormant_after_days"):
        TaskPolicy(dormant_after_days=-1)
    with pytest.raises(ValueError, match="new_arrivals_max_skus"):
        TaskPolicy(new_arrivals_max_skus=0)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_tasks(facts(), today=TODAY, now=NOW.replace(tzinfo=None))


def test_an_open_task_closes_once_and_a_retry_of_the_same_outcome_is_harmless() -> None:
    assert close_verdict(TaskStatus.OPEN, TaskOutcome.DONE) is CloseVerdict.CLOSE
    assert close_verdict(TaskStatus.OPEN, TaskOutcome.SKIPPED) is CloseVerdict.CLOSE
    assert close_verdict(TaskStatus.DONE, TaskOutcome.DONE) is CloseVerdict.ALREADY
    assert close_verdict(TaskStatus.SKIPPED, TaskOutcome.SKIPPED) is CloseVerdict.ALREADY


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (TaskStatus.DONE, TaskOutcome.SKIPPED),
        (TaskStatus.SKIPPED, TaskOutcome.DONE),
        (TaskStatus.EXPIRED, TaskOutcome.DONE),
        (TaskStatus.EXPIRED, TaskOutcome.SKIPPED),
    ],
)
def test_a_closed_or_expired_task_cannot_be_closed_another_way(
    status: TaskStatus, outcome: TaskOutcome
) -> None:
    assert close_verdict(status, outcome) is CloseVerdict.REFUSE


# --- properties ------------------------------------------------------------------------------

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
birthdays = st.dates(min_value=date(1930, 1, 1), max_value=date(2020, 12, 31))


@given(birthday=birthdays, today=days, window=st.integers(0, 30))
def test_a_birthday_task_is_due_exactly_when_the_next_birthday_is_within_the_window(
    birthday: date, today: date, window: int
) -> None:
    coming = next_birthday(birthday, today)
    assert 0 <= (coming - today).days <= 366
    if (birthday.month, birthday.day) == (2, 29):
        assert (coming.month, coming.day) in {(2, 28), (2, 29)}
    else:
        assert (coming.month, coming.day) == (birthday.month, birthday.day)
    tasks = due(
        facts(birthday=birthday), today=today, policy=TaskPolicy(birthday_within_days=window)
    )
    assert bool(tasks) == ((coming - today).days <= window)
    if tasks:
        assert tasks[0].period_key == f"birthday:{coming.year}"


@given(birthday=birthdays, start=days)
def test_every_birthday_is_one_task_a_year_due_on_eight_days_running(
    birthday: date, start: date
) -> None:
    due_days: dict[str, list[date]] = {}
    for offset in range(366 * 2):
        day = start + timedelta(days=offset)
        for task in due(facts(birthday=birthday), today=day):
            due_days.setdefault(task.period_key, []).append(day)
    for key, seen in due_days.items():
        if seen[0] == start or seen[-1] == start + timedelta(days=366 * 2 - 1):
            continue  # cut by the ends of the walk
        assert len(seen) == 8, key
        assert (seen[-1] - seen[0]).days == 7
    assert len(due_days) >= 1


@given(last=st.integers(0, 400), threshold=st.integers(1, 120), later=st.integers(0, 60))
def test_dormancy_starts_at_the_threshold_and_keeps_one_key_while_it_lasts(
    last: int, threshold: int, later: int
) -> None:
    policy = TaskPolicy(dormant_after_days=threshold)
    member = facts(last_purchase_on=TODAY - timedelta(days=last))
    tasks = due(member, policy=policy)
    assert bool(tasks) == (last >= threshold)
    if tasks:
        [still] = due(member, policy=policy, today=TODAY + timedelta(days=later))
        assert still.period_key == tasks[0].period_key


@given(
    hours=st.floats(min_value=0, max_value=24 * 10, allow_nan=False),
    limit=st.integers(1, 72),
)
def test_a_pickup_is_due_once_it_has_waited_longer_than_the_limit(hours: float, limit: int) -> None:
    tasks = due(facts(pickups=(pickup(hours),)), policy=TaskPolicy(pickup_waiting_hours=limit))
    assert bool(tasks) == (timedelta(hours=hours) > timedelta(hours=limit))


lots = st.lists(
    st.builds(
        ExpiringPoints,
        remaining=st.integers(0, 5000),
        expires_on=st.integers(-3, 30).map(lambda d: TODAY + timedelta(days=d)),
    ),
    max_size=6,
)


@given(points=lots)
def test_the_points_task_counts_every_point_expiring_in_the_window_and_no_other(
    points: list[ExpiringPoints],
) -> None:
    inside = [p for p in points if p.remaining and TODAY <= p.expires_on <= TODAY + timedelta(14)]
    tasks = due(facts(points=tuple(points)))
    assert bool(tasks) == bool(inside)
    if tasks:
        assert tasks[0].details["points"] == sum(p.remaining for p in inside)
        first = min(p.expires_on for p in inside)
        assert tasks[0].period_key == f"points_expiring:{first.isoformat()}"


arrivals = st.lists(
    st.builds(
        arrival,
        st.integers(1, 8),
        category=st.sampled_from([TOPS, SHOES, TEA]),
        days_old=st.integers(-1, 20),
        size=st.sampled_from([None, "S", "M", "37"]),
        brand=st.sampled_from([None, "梧桐里", "申城衣橱"]),
        sku=st.integers(1, 200),
    ),
    max_size=12,
    unique_by=lambda a: a.sku_id,
)
members = st.builds(
    facts,
    birthday=st.none() | birthdays,
    last_purchase_on=st.none() | st.integers(0, 400).map(lambda d: TODAY - timedelta(days=d)),
    bought_categories=st.lists(
        st.builds(bought, st.sampled_from([TOPS, SHOES, TEA]), st.integers(0, 300)),
        max_size=3,
        unique_by=lambda c: c.category_id,
    ).map(tuple),
    preferences=st.dictionaries(
        st.sampled_from(["top_size", "shoe_size", "brand", "likes"]),
        st.sampled_from(["M", "37", "梧桐里", "茶叶", "S"]),
        max_size=3,
    ),
    points=lots.map(tuple),
    pickups=st.lists(
        st.builds(pickup, st.integers(0, 100), order=st.integers(1, 5)),
        max_size=2,
        unique_by=lambda p: p.order_id,
    ).map(tuple),
    returns=st.lists(st.integers(0, 6).map(returned), max_size=1).map(tuple),
    marketing_consent=st.none() | st.booleans(),
)


@given(member=members, new=arrivals)
def test_every_task_is_explained_json_able_and_ordered_by_urgency(
    member: MemberFacts, new: list[NewArrival]
) -> None:
    tasks = due(member, arrivals=new)
    assert [t.priority for t in tasks] == sorted(t.priority for t in tasks)
    assert len({t.period_key for t in tasks}) == len(tasks)
    for task in tasks:
        assert task.period_key.startswith(f"{task.kind.value}:")
        assert task.priority == PRIORITY[task.kind]
        assert 0 < len(task.explanation) <= EXPLANATION_MAX
        json.dumps(task.details)
        if member.marketing_consent is False:
            assert task.kind not in MARKETING_KINDS


@given(member=members, new=arrivals, limit=st.integers(1, 4))
def test_new_arrivals_are_few_distinct_new_and_each_has_a_reason_she_would_recognise(
    member: MemberFacts, new: list[NewArrival], limit: int
) -> None:
    picks = pick_new_arrivals(member, new, TODAY, TaskPolicy(new_arrivals_max_skus=limit))
    assert len(picks) <= limit
    assert len({p.arrival.product_id for p in picks}) == len(picks)
    recent = {
        c.category_id for c in member.bought_categories if (TODAY - c.last_bought_on).days <= 180
    }
    liked = {v.casefold() for v in member.preferences.values() if isinstance(v, str)}
    for pick in picks:
        a = pick.arrival
        assert 0 <= (TODAY - a.created_on).days <= 14
        named = {n.casefold() for n in (a.brand, a.category_name) if n}
        assert a.category_id in recent or named & liked
        assert pick.reasons
