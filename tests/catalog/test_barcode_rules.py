"""Barcodes: EAN-13/EAN-8 check digits, the in-store range, scale labels and weighed prices."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.catalog.conftest import with_check_digit, wrong_check_digit
from zhongtai.catalog.models import Symbology
from zhongtai.catalog.rules import (
    InvalidBarcode,
    price_for_quantity,
    read_scale_label,
    validate_barcode,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)


def test_known_retail_codes_are_recognised() -> None:
    assert validate_barcode("6901234567892") is Symbology.EAN13
    assert validate_barcode("4006381333931") is Symbology.EAN13
    assert validate_barcode("73513537") is Symbology.EAN8
    assert validate_barcode("2000000000015") is Symbology.INTERNAL


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_every_12_digits_with_their_check_digit_are_a_valid_ean13(stem: str) -> None:
    expected = Symbology.INTERNAL if stem.startswith("2") else Symbology.EAN13
    assert validate_barcode(with_check_digit(stem)) is expected


@given(st.text(alphabet="0123456789", min_size=7, max_size=7))
def test_every_7_digits_with_their_check_digit_are_a_valid_ean8(stem: str) -> None:
    assert validate_barcode(with_check_digit(stem)) is Symbology.EAN8


@given(
    st.sampled_from([7, 12]).flatmap(
        lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
    )
)
def test_a_wrong_check_digit_is_refused_saying_so(stem: str) -> None:
    code = wrong_check_digit(with_check_digit(stem))
    with pytest.raises(InvalidBarcode, match="wrong check digit"):
        validate_barcode(code)


@given(digits.filter(lambda d: len(d) not in (8, 13)))
def test_a_wrong_length_is_refused_naming_the_lengths_expected(code: str) -> None:
    with pytest.raises(InvalidBarcode, match=r"13 digits .* or 8 digits") as info:
        validate_barcode(code)
    assert f"got {len(code)} digits" in str(info.value)


@pytest.mark.parametrize(
    "code", ["690123456789X", "6901 23456789", "６９０１２３４５６７８９２", "-1234567"]
)
def test_non_digits_are_refused_before_anything_else(code: str) -> None:
    with pytest.raises(InvalidBarcode, match="digits 0-9 only"):
        validate_barcode(code)


def test_an_empty_code_is_refused() -> None:
    with pytest.raises(InvalidBarcode, match="empty"):
        validate_barcode("")


@given(
    flag=st.text(alphabet="0123456789", min_size=1, max_size=1),
    item=st.integers(0, 99_999),
    grams=st.integers(1, 99_999),
)
def test_a_scale_label_gives_back_its_item_template_and_weight(
    flag: str, item: int, grams: int
) -> None:
    template = with_check_digit(f"2{flag}{item:05d}00000")
    label = with_check_digit(f"2{flag}{item:05d}{grams:05d}")
    decoded = read_scale_label(label)
    assert decoded is not None
    assert decoded.template == template
    assert decoded.grams == grams
    assert validate_barcode(decoded.template) is Symbology.INTERNAL


def test_codes_that_are_not_weighed_scale_labels_are_not_decoded() -> None:
    assert read_scale_label("6901234567892") is None  # outside the in-store range
    assert read_scale_label(with_check_digit("210012300000")) is None  # a template: no weight
    assert read_scale_label(wrong_check_digit(with_check_digit("210012301234"))) is None


@given(
    unit_price=st.integers(0, 10**7),
    price_per=st.integers(1, 1000),
    quantity=st.integers(0, 100_000),
)
def test_the_price_of_a_weight_is_the_exact_price_rounded_half_up_to_a_fen(
    unit_price: int, price_per: int, quantity: int
) -> None:
    amount = price_for_quantity(unit_price, price_per, quantity)
    exact_times_2 = 2 * unit_price * quantity
    # amount - 1/2 <= exact < amount + 1/2, in integers (multiplied by 2 * price_per)
    assert (2 * amount - 1) * price_per <= exact_times_2 < (2 * amount + 1) * price_per


def test_half_a_jin_of_apples_at_12_yuan_a_jin_costs_6_yuan() -> None:
    assert price_for_quantity(1200, 500, 250) == 600
    assert price_for_quantity(999, 500, 1) == 2  # 1.998 fen
    assert price_for_quantity(250, 500, 1) == 1  # 0.5 fen rounds up
