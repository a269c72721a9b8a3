"""Pricing a basket: weighed and counted lines, discounts spread over lines, delivery fee."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.orders.kinds import LineKind
from zhongtai.orders.pricing_rules import (
    BasketLine,
    DeliveryFeeRule,
    Discount,
    DiscountShare,
    allocate_discount,
    delivery_fee,
    price_basket,
)

APPLES = BasketLine(uuid.uuid4(), unit_price=1290, price_per=500, quantity=750)  # 12.90/jin
MILK = BasketLine(uuid.uuid4(), unit_price=650, price_per=1, quantity=2)
CLEANING = BasketLine(None, unit_price=300, price_per=1, quantity=1, kind=LineKind.SERVICE)
DELIVERY = DeliveryFeeRule(fee=500, free_from=3900)


def test_a_weighed_line_is_priced_per_its_unit_and_rounded_half_up() -> None:
    basket = price_basket([APPLES, MILK], delivery_fee_rule=None)
    assert [line.amount for line in basket.lines] == [1935, 1300]  # 750 g at 12.90 per 500 g
    assert basket.subtotal == 3235
    assert basket.total == 3235


def test_a_service_line_is_priced_like_goods_and_keeps_its_kind() -> None:
    basket = price_basket([MILK, CLEANING], delivery_fee_rule=None)
    assert basket.lines[1].kind is LineKind.SERVICE
    assert basket.lines[1].sku_id is None
    assert basket.subtotal == 1600


def test_delivery_costs_its_fee_below_the_threshold_and_nothing_from_it() -> None:
    assert delivery_fee(3899, DELIVERY) == 500
    assert delivery_fee(3900, DELIVERY) == 0
    assert delivery_fee(100, DeliveryFeeRule(fee=600)) == 600  # no threshold: always charged
    assert delivery_fee(100, None) == 0  # pickup, in store


def test_the_total_adds_the_delivery_fee_to_the_discounted_goods() -> None:
    basket = price_basket(
        [APPLES, MILK],
        delivery_fee_rule=DELIVERY,
        discounts=[Discount("coupon:SAVE5", 500)],
    )
    assert basket.subtotal == 3235
    assert basket.discount_total == 500
    assert basket.delivery_fee == 500
    assert basket.total == 3235 - 500 + 500


def test_a_coupon_that_takes_the_basket_below_the_threshold_brings_the_fee_back() -> None:
    lines = [BasketLine(uuid.uuid4(), 4000, 1, 1)]
    assert price_basket(lines, delivery_fee_rule=DELIVERY).delivery_fee == 0
    with_coupon = price_basket(
        lines, delivery_fee_rule=DELIVERY, discounts=[Discount("coupon:X", 200)]
    )
    assert with_coupon.delivery_fee == 500
    assert with_coupon.total == 4000 - 200 + 500


def test_an_order_discount_is_spread_over_lines_by_their_amounts() -> None:
    a = BasketLine(uuid.uuid4(), 3000, 1, 1)
    b = BasketLine(uuid.uuid4(), 1000, 1, 1)
    basket = price_basket([a, b], delivery_fee_rule=None, discounts=[Discount("promo:1", 1000)])
    assert [line.discount for line in basket.lines] == [750, 250]
    assert [line.net for line in basket.lines] == [2250, 750]
    assert basket.lines[0].discounts == (DiscountShare("promo:1", 750),)


def test_a_discount_for_some_lines_touches_only_those_lines() -> None:
    basket = price_basket(
        [APPLES, MILK, CLEANING],
        delivery_fee_rule=None,
        discounts=[Discount("promotion:fresh", 300, line_indexes=(0,))],
    )
    assert [line.discount for line in basket.lines] == [300, 0, 0]
    assert basket.lines[1].discounts == ()


def test_stacked_discounts_never_take_a_line_below_zero() -> None:
    basket = price_basket(
        [MILK],
        delivery_fee_rule=None,
        discounts=[Discount("promotion:half", 650), Discount("coupon:BIG", 5000)],
    )
    assert basket.lines[0].net == 0
    assert basket.total == 0
    assert [(d.requested, d.applied) for d in basket.discounts] == [(650, 650), (5000, 650)]


def test_a_discount_naming_a_line_outside_the_basket_is_a_bug_not_a_silent_zero() -> None:
    with pytest.raises(ValueError, match="outside the basket"):
        price_basket([MILK], delivery_fee_rule=None, discounts=[Discount("x", 1, (3,))])


def test_allocation_gives_leftover_fen_to_the_largest_remainders() -> None:
    assert allocate_discount(100, [300, 300, 300]) == [34, 33, 33]
    assert allocate_discount(10, [500, 300, 200]) == [5, 3, 2]
    assert allocate_discount(7, [0, 10, 0]) == [0, 7, 0]
    assert allocate_discount(0, [5, 5]) == [0, 0]


def test_allocating_more_than_the_lines_are_worth_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot spread"):
        allocate_discount(11, [5, 5])


@st.composite
def allocations(draw: st.DrawFn) -> tuple[int, list[int]]:
    lines = draw(st.lists(st.integers(0, 1_000_000), min_size=1, max_size=30))
    amount = draw(st.integers(0, sum(lines)))
    return amount, lines


@given(allocations())
def test_allocation_sums_exactly_and_never_exceeds_a_line(case: tuple[int, list[int]]) -> None:
    amount, lines = case
    parts = allocate_discount(amount, lines)
    assert sum(parts) == amount
    total = sum(lines)
    for part, line in zip(parts, lines, strict=True):
        assert 0 <= part <= line
        # within one fen of the exact proportional share
        assert abs(part * total - amount * line) < total or total == 0


basket_lines = st.builds(
    BasketLine,
    sku_id=st.uuids(),
    unit_price=st.integers(0, 100_000),
    price_per=st.sampled_from([1, 100, 500, 1000]),
    quantity=st.integers(1, 5_000),
    kind=st.sampled_from(list(LineKind)),
)


@given(
    st.lists(basket_lines, min_size=1, max_size=10),
    st.lists(st.integers(0, 200_000), max_size=4),
    st.one_of(st.none(), st.builds(DeliveryFeeRule, st.integers(0, 2000), st.integers(0, 10**6))),
)
def test_a_priced_basket_always_adds_up(
    lines: list[BasketLine], discount_amounts: list[int], rule: DeliveryFeeRule | None
) -> None:
    discounts = [Discount(f"d{i}", amount) for i, amount in enumerate(discount_amounts)]
    basket = price_basket(lines, delivery_fee_rule=rule, discounts=discounts)
    assert basket.subtotal == sum(line.amount for line in basket.lines)
    assert basket.discount_total == sum(line.discount for line in basket.lines)
    assert basket.discount_total == sum(d.applied for d in basket.discounts)
    for line in basket.lines:
        assert line.net == line.amount - line.discount >= 0
        assert line.discount == sum(share.amount for share in line.discounts)
    assert basket.total == basket.subtotal - basket.discount_total + basket.delivery_fee
    assert basket.total >= basket.delivery_fee >= 0
