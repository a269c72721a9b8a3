"""Money reads as the customer reads it: whole yuan and two places of fen, never a float."""

from __future__ import annotations

import pytest

from zhongtai.core.money import Money, yuan


@pytest.mark.parametrize(
    ("fen", "text"),
    [(1250, "¥12.50"), (5, "¥0.05"), (0, "¥0.00"), (-300, "-¥3.00"), (199900, "¥1999.00")],
)
def test_yuan_shows_two_places_of_fen_and_the_sign_in_front(fen: int, text: str) -> None:
    assert yuan(fen) == text


def test_a_round_amount_may_read_as_whole_yuan_on_a_coupon_face() -> None:
    assert yuan(2000, whole_if_round=True) == "¥20"
    assert yuan(19950, whole_if_round=True) == "¥199.50"
    assert yuan(-2000, whole_if_round=True) == "-¥20"


def test_money_displays_with_its_currency_code() -> None:
    assert Money.fen(-1299).display() == "-12.99 CNY"
