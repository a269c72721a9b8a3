"""Pickup codes and their signed QR, the store's business day, receipt numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.orders.codes import (
    InvalidPickupQr,
    InvalidReceiptNumber,
    PickupQr,
    ReceiptNumber,
    business_date,
    new_pickup_code,
    parse_receipt_number,
    pickup_code_digest,
    pickup_code_matches,
    pickup_qr_payload,
    read_pickup_qr,
    receipt_number,
)

SECRET = "test-secret-for-pickup-codes"
ORDER = uuid.UUID("01930000-0000-7000-8000-000000000001")


def test_a_pickup_code_is_six_digits_and_codes_differ() -> None:
    codes = {new_pickup_code() for _ in range(200)}
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(codes) > 150  # a million possibilities: 200 draws nearly never repeat much


def test_the_stored_digest_matches_only_the_right_code_of_the_right_order() -> None:
    digest = pickup_code_digest(SECRET, ORDER, "042317")
    assert len(digest) == 64
    assert "042317" not in digest
    assert pickup_code_matches(SECRET, ORDER, "042317", digest)
    assert not pickup_code_matches(SECRET, ORDER, "042318", digest)
    assert not pickup_code_matches(SECRET, uuid.uuid4(), "042317", digest)
    assert not pickup_code_matches("another-secret", ORDER, "042317", digest)


def test_the_same_code_on_two_orders_is_stored_differently() -> None:
    assert pickup_code_digest(SECRET, ORDER, "123456") != pickup_code_digest(
        SECRET, uuid.uuid4(), "123456"
    )


def test_a_pickup_qr_reads_back_its_order_and_code() -> None:
    payload = pickup_qr_payload(SECRET, ORDER, "042317")
    assert payload.startswith(f"ztp1.{ORDER}.042317.")
    assert read_pickup_qr(SECRET, payload) == PickupQr(ORDER, "042317")


def test_the_qr_signature_is_not_the_stored_digest() -> None:
    payload = pickup_qr_payload(SECRET, ORDER, "042317")
    assert payload.rsplit(".", 1)[1] != pickup_code_digest(SECRET, ORDER, "042317")


def test_a_qr_with_another_code_or_order_is_detected_as_altered() -> None:
    payload = pickup_qr_payload(SECRET, ORDER, "042317")
    other_code = payload.replace(".042317.", ".042318.")
    other_order = payload.replace(str(ORDER), str(uuid.uuid4()))
    for forged in (other_code, other_order):
        with pytest.raises(InvalidPickupQr, match="altered or forged"):
            read_pickup_qr(SECRET, forged)
    with pytest.raises(InvalidPickupQr, match="altered or forged"):
        read_pickup_qr("another-secret", payload)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ("hello", "not a pickup QR"),
        (f"ztp2.{ORDER}.042317.{'0' * 64}", "version"),
        (f"ztp1.not-a-uuid.042317.{'0' * 64}", "order id"),
        (f"ztp1.{ORDER}.42317.{'0' * 64}", "malformed"),
        (f"ztp1.{ORDER}.042317.abc", "malformed"),
    ],
)
def test_a_text_that_is_no_pickup_qr_says_why(payload: str, why: str) -> None:
    with pytest.raises(InvalidPickupQr, match=why):
        read_pickup_qr(SECRET, payload)


@given(st.uuids(), st.from_regex(r"[0-9]{6}", fullmatch=True), st.integers(0, 200), st.data())
def test_changing_any_character_of_a_qr_is_detected(
    order_id: uuid.UUID, code: str, position: int, data: st.DataObject
) -> None:
    payload = pickup_qr_payload(SECRET, order_id, code)
    i = position % len(payload)
    replacement = data.draw(
        st.sampled_from("0123456789abcdef.-xz").filter(lambda c: c != payload[i])
    )
    tampered = payload[:i] + replacement + payload[i + 1 :]
    with pytest.raises(InvalidPickupQr):
        read_pickup_qr(SECRET, tampered)


# --- business days and receipts --------------------------------------------------------------

SHANGHAI = "Asia/Shanghai"


def test_a_sale_at_half_past_one_at_night_belongs_to_the_previous_business_day() -> None:
    late = datetime(2026, 11, 26, 17, 30, tzinfo=UTC)  # 01:30 on 27 Nov in Shanghai
    assert business_date(late, SHANGHAI) == date(2026, 11, 26)


def test_from_four_in_the_morning_the_new_business_day_has_begun() -> None:
    assert business_date(datetime(2026, 11, 26, 20, 0, tzinfo=UTC), SHANGHAI) == date(2026, 11, 27)
    assert business_date(datetime(2026, 11, 26, 19, 59, tzinfo=UTC), SHANGHAI) == date(2026, 11, 26)


def test_a_store_open_until_two_can_start_its_day_at_midnight_instead() -> None:
    late = datetime(2026, 11, 26, 17, 30, tzinfo=UTC)
    assert business_date(late, SHANGHAI, day_starts=time(0, 0)) == date(2026, 11, 27)


def test_a_business_day_is_counted_in_the_stores_own_time_zone() -> None:
    moment = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai, 02:00 in New York
    assert business_date(moment, SHANGHAI) == date(2026, 7, 1)
    assert business_date(moment, "America/New_York") == date(2026, 6, 30)


def test_a_receipt_number_names_store_terminal_day_and_sequence() -> None:
    number = receipt_number("SH001", "T02", date(2026, 11, 26), 123)
    assert number == "SH001-T02-20261126-000123"
    assert parse_receipt_number(number) == ReceiptNumber("SH001", "T02", date(2026, 11, 26), 123)
    assert str(parse_receipt_number(number)) == number


def test_a_store_code_with_dashes_still_parses() -> None:
    parsed = parse_receipt_number("BJ-CY-07-POS1-20260101-000001")
    assert (parsed.store_code, parsed.terminal_code, parsed.sequence) == ("BJ-CY-07", "POS1", 1)


def test_a_terminal_code_with_a_dash_or_a_sequence_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="terminal code"):
        receipt_number("SH001", "T-02", date(2026, 1, 1), 1)
    with pytest.raises(ValueError, match="sequence"):
        receipt_number("SH001", "T02", date(2026, 1, 1), 0)
    with pytest.raises(ValueError, match="sequence"):
        receipt_number("SH001", "T02", date(2026, 1, 1), 1_000_000)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SH001-T02-20261126",
        "SH001-T02-20261126-123",
        "SH001-T02-20261331-000001",
        "SH001-T02-20261126-000000",
    ],
)
def test_text_that_is_not_a_receipt_number_is_refused(text: str) -> None:
    with pytest.raises(InvalidReceiptNumber):
        parse_receipt_number(text)


@given(
    st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_]{1,16}", fullmatch=True),
    st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    st.integers(1, 999_999),
)
def test_every_receipt_number_parses_back_to_its_parts(
    store: str, terminal: str, day: date, sequence: int
) -> None:
    number = receipt_number(store, terminal, day, sequence)
    assert parse_receipt_number(number) == ReceiptNumber(store, terminal, day, sequence)
