"""The order's status table per fulfilment type, its events, and refunds of returned units."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.orders.kinds import FulfillmentType as F
from zhongtai.orders.kinds import OrderStatus as S
from zhongtai.orders.rules import (
    EVENTS,
    PLACED_EVENT,
    TRANSITIONS,
    Step,
    illegal_step_message,
    next_statuses,
    order_step,
    return_refund,
    returnable_quantity,
    step_event,
)

HAPPY_PATHS = {
    F.IN_STORE: [S.CREATED, S.PAID, S.COMPLETED],
    F.DELIVERY: [
        *(S.CREATED, S.PAID, S.ACCEPTED, S.PICKING, S.PACKED),
        *(S.OUT_FOR_DELIVERY, S.COMPLETED),
    ],
    F.PICKUP: [
        *(S.CREATED, S.PAID, S.ACCEPTED, S.PICKING, S.PACKED),
        *(S.READY_FOR_PICKUP, S.COMPLETED),
    ],
    F.SHIP: [S.CREATED, S.PAID, S.ACCEPTED, S.PICKING, S.PACKED, S.SHIPPED, S.COMPLETED],
    F.RESERVE_TRY: [S.CREATED, S.ACCEPTED, S.PICKING, S.PACKED, S.READY_FOR_PICKUP, S.COMPLETED],
}

types = st.sampled_from(list(F))
statuses = st.sampled_from(list(S))


@pytest.mark.parametrize("kind", list(F))
def test_each_fulfilment_type_walks_its_own_path_to_completed_and_back_through_returns(
    kind: F,
) -> None:
    path = [*HAPPY_PATHS[kind], S.PARTIALLY_RETURNED, S.RETURNED]
    for current, wanted in itertools.pairwise(path):
        assert order_step(kind, current, wanted) is Step.APPLY, (current, wanted)
    assert order_step(kind, S.COMPLETED, S.RETURNED) is Step.APPLY


def test_a_delivery_order_cannot_be_made_ready_for_pickup_or_shipped() -> None:
    assert order_step(F.DELIVERY, S.PACKED, S.READY_FOR_PICKUP) is Step.ILLEGAL
    assert order_step(F.DELIVERY, S.PACKED, S.SHIPPED) is Step.ILLEGAL
    assert order_step(F.PICKUP, S.PACKED, S.OUT_FOR_DELIVERY) is Step.ILLEGAL
    assert order_step(F.SHIP, S.PACKED, S.READY_FOR_PICKUP) is Step.ILLEGAL


def test_no_step_may_be_skipped_and_none_goes_back() -> None:
    assert order_step(F.DELIVERY, S.PAID, S.PICKING) is Step.ILLEGAL
    assert order_step(F.PICKUP, S.CREATED, S.READY_FOR_PICKUP) is Step.ILLEGAL
    assert order_step(F.PICKUP, S.PICKING, S.ACCEPTED) is Step.ILLEGAL
    assert order_step(F.IN_STORE, S.CREATED, S.COMPLETED) is Step.ILLEGAL


def test_an_order_must_be_paid_before_a_store_accepts_it_except_reserve_and_try() -> None:
    assert order_step(F.DELIVERY, S.CREATED, S.ACCEPTED) is Step.ILLEGAL
    assert order_step(F.RESERVE_TRY, S.CREATED, S.ACCEPTED) is Step.APPLY
    assert order_step(F.RESERVE_TRY, S.CREATED, S.PAID) is Step.ILLEGAL


@given(types, statuses)
def test_repeating_the_current_status_is_already_done(kind: F, status: S) -> None:
    assert order_step(kind, status, status) is Step.ALREADY


def test_a_second_partial_return_leaves_the_status_as_it_is() -> None:
    assert order_step(F.PICKUP, S.PARTIALLY_RETURNED, S.PARTIALLY_RETURNED) is Step.ALREADY


@pytest.mark.parametrize("kind", list(F))
def test_cancelled_and_returned_are_final(kind: F) -> None:
    assert next_statuses(kind, S.CANCELLED) == ()
    assert next_statuses(kind, S.RETURNED) == ()


def test_cancellation_is_allowed_until_the_goods_leave_the_store() -> None:
    cancellable = {
        kind: {s for s in S if order_step(kind, s, S.CANCELLED) is Step.APPLY} for kind in F
    }
    assert cancellable[F.IN_STORE] == {S.CREATED, S.PAID}
    assert cancellable[F.DELIVERY] == {S.CREATED, S.PAID, S.ACCEPTED, S.PICKING, S.PACKED}
    assert cancellable[F.SHIP] == {S.CREATED, S.PAID, S.ACCEPTED, S.PICKING, S.PACKED}
    ready = {S.CREATED, S.PAID, S.ACCEPTED, S.PICKING, S.PACKED, S.READY_FOR_PICKUP}
    assert cancellable[F.PICKUP] == ready  # the customer who never came
    assert cancellable[F.RESERVE_TRY] == ready - {S.PAID}  # tried on, did not buy
    for kind in F:
        for handed_over in (S.OUT_FOR_DELIVERY, S.SHIPPED, S.COMPLETED, S.PARTIALLY_RETURNED):
            assert order_step(kind, handed_over, S.CANCELLED) is Step.ILLEGAL


def test_the_illegal_step_message_says_what_is_allowed_next() -> None:
    message = illegal_step_message(F.PICKUP, S.PACKED, S.SHIPPED)
    assert message.startswith("A pickup order that is packed cannot become shipped")
    assert "pickup orders never pass through shipped" in message
    assert message.endswith("next it may become ready_for_pickup or cancelled.")


def test_the_illegal_step_message_explains_late_cancellation_and_final_states() -> None:
    late = illegal_step_message(F.DELIVERY, S.OUT_FOR_DELIVERY, S.CANCELLED)
    assert "the goods have left the store" in late
    assert late.endswith("next it may become completed, partially_returned or returned.")
    final = illegal_step_message(F.SHIP, S.CANCELLED, S.PAID)
    assert "cancelled is final" in final
    assert illegal_step_message(F.IN_STORE, S.CREATED, S.COMPLETED).startswith(
        "An in_store order that is created cannot become completed;"
    )
    try_on = illegal_step_message(F.RESERVE_TRY, S.CREATED, S.PAID)
    assert "paid at the till" in try_on
    assert try_on.endswith("next it may become accepted or cancelled.")


@given(types, statuses, statuses)
def test_every_illegal_step_message_names_the_allowed_next_statuses(
    kind: F, current: S, wanted: S
) -> None:
    if order_step(kind, current, wanted) is not Step.ILLEGAL:
        return
    message = illegal_step_message(kind, current, wanted)
    for allowed in next_statuses(kind, current):
        assert allowed.value in message


def test_each_transition_has_a_past_tense_event() -> None:
    assert step_event(S.PAID) == "order.paid"
    assert step_event(S.READY_FOR_PICKUP) == "fulfillment.ready_for_pickup"
    assert step_event(S.OUT_FOR_DELIVERY) == "order.out_for_delivery"
    assert step_event(S.CANCELLED) == "order.cancelled"
    assert step_event(S.RETURNED) == "order.returned"
    assert step_event(S.PARTIALLY_RETURNED) == "order.returned"
    assert PLACED_EVENT == "order.created"
    reachable = {s for table in TRANSITIONS.values() for nexts in table.values() for s in nexts}
    assert reachable == set(EVENTS)
    with pytest.raises(ValueError, match=r"order\.created"):
        step_event(S.CREATED)


# --- returns ---------------------------------------------------------------------------------


def test_returnable_is_what_was_handed_over_less_what_came_back() -> None:
    assert returnable_quantity(5, 1, 2) == 2
    assert returnable_quantity(500, 0, 500) == 0  # grams of a weighed line
    assert returnable_quantity(3, 3, 0) == 0  # nothing was picked: nothing to return


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000))
def test_returnable_is_never_negative_nor_more_than_ordered(
    ordered: int, short: int, returned: int
) -> None:
    value = returnable_quantity(ordered, short, returned)
    assert 0 <= value <= ordered
    if short + returned <= ordered:
        assert value + short + returned == ordered


def test_three_units_for_1000_fen_refund_333_333_then_334() -> None:
    assert return_refund(1000, 3, 0, 1) == 333
    assert return_refund(1000, 3, 1, 1) == 334  # cumulative 667 (rounded half up) - 333
    assert return_refund(1000, 3, 2, 1) == 333
    assert return_refund(1000, 3, 0, 3) == 1000


def test_returning_more_than_remains_is_refused() -> None:
    with pytest.raises(ValueError, match="remain"):
        return_refund(1000, 3, 2, 2)


@st.composite
def return_steps(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    quantity = draw(st.integers(1, 2_000))
    net = draw(st.integers(0, 10_000_000))
    steps: list[int] = []
    left = quantity
    while left:
        step = draw(st.integers(1, left))
        steps.append(step)
        left -= step
    return net, quantity, steps


@given(return_steps())
def test_returning_all_units_in_any_steps_refunds_exactly_the_net_paid(
    case: tuple[int, int, list[int]],
) -> None:
    net, quantity, steps = case
    refunds = []
    back = 0
    for step in steps:
        refund = return_refund(net, quantity, back, step)
        assert refund >= 0
        # never more than one fen away from the exact proportional share
        assert abs(refund * quantity - net * step) <= quantity
        refunds.append(refund)
        back += step
    assert sum(refunds) == net
