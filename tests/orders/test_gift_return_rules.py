"""The rule of a gift (满额赠) when goods of its order come back: the gift's worth is taken
from the refund when the goods kept no longer reach the coupon's threshold and the gift stays
with the customer, never more than the return refunds, never twice, and given back when the
gift comes back."""

from __future__ import annotations

from fractions import Fraction

import pytest

from zhongtai.orders.gift_returns import (
    CountedLine,
    GiftState,
    Units,
    explain,
    gift_owed,
    judge_gift,
    kept_value,
)


def _state(
    *bought: Units, gift: Units | None = None, threshold: int = 2000, worth: int = 1000
) -> GiftState:
    """Lines of 1000 fen a unit that counted in full toward the threshold."""
    counted = tuple(CountedLine(1000 * u.quantity, u) for u in bought)
    return GiftState(threshold, counted, gift or Units(1), worth)


def test_keeping_enough_of_the_goods_that_earned_the_gift_owes_nothing() -> None:
    state = _state(Units(3, returned=1))
    assert kept_value(state.counted) == 2000
    verdict = judge_gift(state, withheld_before=0, refund=1000)
    assert (verdict.below, verdict.owed, verdict.amount) == (False, 0, 0)


def test_keeping_less_than_the_threshold_with_the_gift_takes_its_worth_from_the_refund() -> None:
    verdict = judge_gift(_state(Units(3, returned=2)), withheld_before=0, refund=2000)
    assert (verdict.kept, verdict.below, verdict.owed) == (1000, True, 1000)
    assert (verdict.withheld, verdict.given_back, verdict.amount) == (1000, 0, 1000)


def test_a_gift_that_comes_back_with_the_goods_or_before_them_owes_nothing() -> None:
    for gift in (Units(1, returned=1), Units(2, returned=2)):
        verdict = judge_gift(
            _state(Units(3, returned=3), gift=gift), withheld_before=0, refund=3000
        )
        assert verdict.below and (verdict.owed, verdict.amount) == (0, 0)


def test_what_is_taken_is_at_most_the_refund_and_the_next_return_takes_the_rest() -> None:
    state = _state(Units(3, returned=1), threshold=3000, worth=2500)
    first = judge_gift(state, withheld_before=0, refund=1000)
    assert (first.owed, first.withheld) == (2500, 1000)
    second = judge_gift(
        _state(Units(3, returned=2), threshold=3000, worth=2500), withheld_before=1000, refund=1000
    )
    assert second.withheld == 1000
    third = judge_gift(
        _state(Units(3, returned=3), threshold=3000, worth=2500), withheld_before=2000, refund=1000
    )
    assert third.withheld == 500  # all of its worth now, never more


def test_nothing_is_taken_twice() -> None:
    verdict = judge_gift(_state(Units(3, returned=3)), withheld_before=1000, refund=1000)
    assert (verdict.owed, verdict.amount) == (1000, 0)


def test_a_gift_returned_after_its_worth_was_taken_gets_it_back() -> None:
    state = _state(Units(3, returned=2), gift=Units(1, returned=1))
    verdict = judge_gift(state, withheld_before=1000, refund=0)
    assert (verdict.owed, verdict.withheld, verdict.given_back, verdict.amount) == (
        0,
        0,
        1000,
        -1000,
    )


def test_a_capped_deduction_is_given_back_as_taken_not_as_the_gift_is_worth() -> None:
    state = _state(Units(3, returned=2), gift=Units(1, returned=1))
    assert judge_gift(state, withheld_before=400, refund=0).given_back == 400


def test_part_of_a_gift_returned_owes_the_worth_of_the_units_kept() -> None:
    state = _state(Units(3, returned=2), gift=Units(2, returned=1), worth=1999)
    assert gift_owed(state) == 999  # rounded down: never more than the units kept are worth
    verdict = judge_gift(state, withheld_before=1999, refund=0)
    assert verdict.given_back == 1000


def test_a_gift_the_store_never_handed_over_owes_nothing() -> None:
    assert gift_owed(_state(Units(3, returned=3), gift=Units(1, short=1))) == 0


def test_a_substitute_for_the_gift_counts_as_the_gift_until_it_comes_back() -> None:
    gift = Units(2, short=2, substitute_sent=2)
    assert gift_owed(_state(Units(3, returned=3), gift=gift)) == 1000
    gift = Units(2, short=2, substitute_sent=2, substitute_returned=2)
    assert gift_owed(_state(Units(3, returned=3), gift=gift)) == 0


def test_units_the_store_did_not_hand_over_still_count_as_kept() -> None:
    # A short pick is the store's shortfall, not the customer's return.
    short = Units(3, short=1, returned=1)
    assert kept_value([CountedLine(3000, short)]) == 2000
    # Unless the substitute sent for them comes back.
    substituted = Units(3, short=1, substitute_sent=2, substitute_returned=1)
    assert kept_value([CountedLine(3000, substituted)]) == Fraction(5000, 2)


def test_lines_count_at_what_they_counted_when_the_coupon_judged_the_basket() -> None:
    # A line discounted to 1500 before the coupon counted 1500 for 2 units: 750 each.
    counted = [CountedLine(1500, Units(2, returned=1)), CountedLine(1000, Units(1))]
    assert kept_value(counted) == 1750
    state = GiftState(1800, tuple(counted), Units(1), 800)
    assert judge_gift(state, withheld_before=0, refund=750).withheld == 750


def test_keeping_everything_always_keeps_the_threshold() -> None:
    state = GiftState(2999, (CountedLine(1000, Units(3)), CountedLine(1999, Units(7))), Units(1), 1)
    assert judge_gift(state, withheld_before=0, refund=0).amount == 0


def test_the_sentence_names_the_coupon_the_gift_and_how_much() -> None:
    taken = judge_gift(_state(Units(3, returned=2)), withheld_before=0, refund=2000)
    sentence = explain(taken, coupon="coupon 满20送", gift="酸奶 (Y1)")
    assert sentence == (
        "coupon 满20送: the goods kept (¥10.00) no longer reach its threshold (¥20.00) and the "
        "gift 酸奶 (Y1) was not returned, so its worth, ¥10.00, is taken from this refund"
    )
    capped = judge_gift(_state(Units(3, returned=2), worth=5000), withheld_before=0, refund=2000)
    assert "¥20.00 of its worth (¥50.00)" in explain(capped, coupon="c", gift="g")
    back = judge_gift(
        _state(Units(3, returned=2), gift=Units(1, returned=1)), withheld_before=1000, refund=0
    )
    assert explain(back, coupon="c", gift="g") == (
        "c: the gift g came back, so the ¥10.00 withheld for it from an earlier refund is "
        "given back"
    )


@pytest.mark.parametrize(
    ("units", "why"),
    [
        ({"quantity": 0}, "a line has units"),
        ({"quantity": 2, "short": 3}, "short units"),
        ({"quantity": 2, "short": 1, "returned": 2}, "handed-over"),
        ({"quantity": 2, "substitute_sent": 1, "substitute_returned": 2}, "substitute"),
    ],
)
def test_impossible_units_are_refused(units: dict[str, int], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Units(**units)


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        judge_gift(_state(Units(1)), withheld_before=-1, refund=0)
