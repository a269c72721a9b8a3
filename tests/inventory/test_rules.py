"""Pure stock rules: ATP, the reservation state table, thresholds, baskets and lock order."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.inventory.models import ReservationStatus as S
from zhongtai.inventory.rules import (
    Allocation,
    Line,
    Step,
    Threshold,
    atp,
    basket_problems,
    channel_atp,
    crossed,
    lock_order,
    may_take,
    reservation_step,
    ttl_problem,
)

counts = st.integers(min_value=-1000, max_value=1000)
non_negative = st.integers(min_value=0, max_value=1000)


@given(counts, non_negative, non_negative)
def test_atp_is_on_hand_less_reserved_less_safety_and_never_negative(
    on_hand: int, reserved: int, safety: int
) -> None:
    value = atp(on_hand, reserved, safety)
    assert value >= 0
    assert value == max(0, on_hand - reserved - safety)


def test_atp_of_ten_on_hand_three_reserved_two_safety_is_five() -> None:
    assert atp(10, 3, 2) == 5
    assert atp(-4, 0, 0) == 0


def test_only_an_active_reservation_moves_and_only_to_a_final_state() -> None:
    assert reservation_step(S.ACTIVE, S.CONFIRMED) is Step.APPLY
    assert reservation_step(S.ACTIVE, S.RELEASED) is Step.APPLY
    assert reservation_step(S.ACTIVE, S.EXPIRED) is Step.APPLY
    assert reservation_step(S.CONFIRMED, S.RELEASED) is Step.ILLEGAL
    assert reservation_step(S.RELEASED, S.CONFIRMED) is Step.ILLEGAL
    assert reservation_step(S.EXPIRED, S.CONFIRMED) is Step.ILLEGAL
    assert reservation_step(S.CONFIRMED, S.ACTIVE) is Step.ILLEGAL


def test_repeating_a_step_or_releasing_an_expired_hold_is_already_done() -> None:
    for status in S:
        assert reservation_step(status, status) is Step.ALREADY
    assert reservation_step(S.EXPIRED, S.RELEASED) is Step.ALREADY


def test_out_is_announced_when_atp_reaches_zero_and_low_when_it_falls_to_the_level() -> None:
    assert crossed(3, 0, 5) is Threshold.OUT
    assert crossed(8, 4, 5) is Threshold.LOW
    assert crossed(8, 5, 5) is Threshold.LOW
    assert crossed(4, 3, 5) is None  # already low: announced once, not per sale
    assert crossed(0, 0, 5) is None  # already out
    assert crossed(8, 4, 0) is None  # no low level set
    assert crossed(0, 6, 5) is None  # rising


@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 100))
def test_a_rising_atp_never_crosses_a_threshold(before: int, rise: int, level: int) -> None:
    assert crossed(before, before + rise, level) is None


def test_a_basket_names_each_bad_line() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    problems = basket_problems([Line(a, 1), Line(b, 0), Line(a, 2)])
    fields = {p.field for p in problems}
    assert fields == {"lines.1.quantity", "lines.2.sku_id"}
    assert "lines.0" in next(p.message for p in problems if p.field == "lines.2.sku_id")
    assert basket_problems([])[0].field == "lines"


@given(st.lists(st.uuids(), min_size=1, max_size=20, unique=True))
def test_lock_order_is_the_same_whatever_order_the_lines_came_in(ids: list[uuid.UUID]) -> None:
    lines = [Line(i, 1) for i in ids]
    assert lock_order(lines) == lock_order(list(reversed(lines)))
    assert [x.sku_id for x in lock_order(lines)] == sorted(ids)


def test_ttl_must_be_between_thirty_seconds_and_a_week() -> None:
    assert ttl_problem(29) is not None
    assert ttl_problem(30) is None
    assert ttl_problem(7 * 24 * 3600 + 1) is not None


def test_online_sells_at_most_80_percent_and_leaves_2_units_for_walk_ins() -> None:
    online = Allocation(share_percent=80, keep_units=2)
    assert channel_atp(10, online) == 8
    assert channel_atp(5, online) == 3  # 80% is 4, but 2 stay for the shop floor
    assert channel_atp(1, online) == 0
    assert channel_atp(7, Allocation(share_percent=0)) == 0
    assert channel_atp(7, Allocation()) == 7


@given(st.integers(0, 500), st.integers(0, 100), st.integers(0, 20), st.integers(1, 50))
def test_a_channel_may_take_exactly_up_to_its_channel_atp(
    store_atp: int, share: int, keep: int, quantity: int
) -> None:
    allocation = Allocation(share_percent=share, keep_units=keep)
    assert may_take(store_atp, allocation, quantity) == (
        quantity <= channel_atp(store_atp, allocation)
    )
