"""What a return refunded of each line for commission: the lines' refunds, less a gift's worth
withheld spread over them in proportion, plus what is given back for the gift, to the lines it
was withheld from."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.guides.refund_rules import LineRefund, ReturnedMoney, line_refunds, spread

A, B, C = sorted(uuid.UUID(int=i) for i in (1, 2, 3))
GIFT, OTHER_GIFT = uuid.UUID(int=100), uuid.UUID(int=101)


def test_spread_is_proportional_by_largest_remainder_and_never_beyond_a_weight() -> None:
    assert spread(1000, {A: 2000, B: 2000}) == {A: 500, B: 500}
    assert spread(100, {A: 100, B: 100, C: 100}) == {A: 34, B: 33, C: 33}  # ties: smaller key
    assert spread(2, {A: 1, B: 0, C: 5}) == {C: 2}  # 1/3 and 5/3: C's remainder is larger
    assert spread(6, {A: 1, B: 0, C: 5}) == {A: 1, C: 5}
    assert spread(0, {A: 10}) == {}
    with pytest.raises(ValueError):
        spread(7, {A: 1, C: 5})


def test_without_gifts_a_line_refunds_what_its_units_refunded() -> None:
    [first, second] = line_refunds([ReturnedMoney({A: 2000}), ReturnedMoney({A: 1000, B: 500})])
    assert first == {A: LineRefund(2000)}
    assert (second[A].net, second[B].net) == (1000, 500)


def test_the_withheld_worth_is_spread_over_the_returns_lines_and_given_back_to_them() -> None:
    kept, other, gift_back = line_refunds(
        [
            ReturnedMoney({A: 1000, B: 3000}, [(GIFT, 1000)]),
            ReturnedMoney({C: 2000}),
            # The gift line itself refunds nothing; what was withheld goes back to A and B.
            ReturnedMoney({GIFT: 0}, [(GIFT, -1000)]),
        ]
    )
    assert kept == {A: LineRefund(1000, 250), B: LineRefund(3000, 750)}
    assert (kept[A].net, kept[B].net) == (750, 2250)
    assert other == {C: LineRefund(2000)}
    assert gift_back == {
        A: LineRefund(0, 0, 250),
        B: LineRefund(0, 0, 750),
        GIFT: LineRefund(0),
    }


def test_a_worth_withheld_over_two_returns_is_given_back_in_the_shares_still_withheld() -> None:
    *_, half, rest = line_refunds(
        [
            ReturnedMoney({A: 1000}, [(GIFT, 1000)]),
            ReturnedMoney({B: 1000}, [(GIFT, 1000)]),
            ReturnedMoney({GIFT: 0}, [(GIFT, -1000)]),  # one of two gift units back
            ReturnedMoney({GIFT: 0}, [(GIFT, -1000)]),
        ]
    )
    assert half == {A: LineRefund(0, 0, 500), B: LineRefund(0, 0, 500), GIFT: LineRefund(0)}
    assert rest == {A: LineRefund(0, 0, 500), B: LineRefund(0, 0, 500), GIFT: LineRefund(0)}


def test_two_gifts_withheld_from_one_return_never_take_a_line_below_nothing() -> None:
    [both] = line_refunds(
        [ReturnedMoney({A: 1, B: 1, C: 1}, [(GIFT, 2), (OTHER_GIFT, 1)])],
    )
    assert all(0 <= x.withheld <= x.refund and x.net >= 0 for x in both.values())
    assert sum(x.withheld for x in both.values()) == 3


@st.composite
def _histories(draw: st.DrawFn) -> list[ReturnedMoney]:
    """Returns of lines A, B and C with a gift: withholding at most what each return refunds,
    giving back at most what is withheld, as the orders context does."""
    withheld = 0
    history = []
    for _ in range(draw(st.integers(1, 6))):
        refunds = {
            line: draw(st.integers(0, 5000))
            for line in draw(st.sets(st.sampled_from([A, B, C]), min_size=1))
        }
        if draw(st.booleans()) and withheld:
            back = draw(st.integers(1, withheld))
            history.append(ReturnedMoney(refunds, [(GIFT, -back)]))
            withheld -= back
        else:
            take = draw(st.integers(0, sum(refunds.values())))
            history.append(ReturnedMoney(refunds, [(GIFT, take)] if take else []))
            withheld += take
    if withheld:  # the gift comes back at last
        history.append(ReturnedMoney({}, [(GIFT, -withheld)]))
    return history


@given(_histories())
def test_a_lines_refunds_never_go_down_and_end_at_what_its_units_refunded(
    history: list[ReturnedMoney],
) -> None:
    slices = line_refunds(history)
    for money, returned in zip(history, slices, strict=True):
        assert all(x.net >= 0 and x.withheld <= x.refund for x in returned.values())
        # Each return's slices add up to what the return refunded, net of the gift.
        gift = sum(amount for _, amount in money.gifts)
        assert sum(x.net for x in returned.values()) == sum(money.refunds.values()) - gift
    for line in (A, B, C):
        refunded = sum(m.refunds.get(line, 0) for m in history)
        assert sum(s[line].net for s in slices if line in s) == refunded
