"""Pure checks of secrets handling: key format, hashing, passwords, token signatures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.core.auth import credentials
from zhongtai.core.clock import business_day
from zhongtai.core.money import Money


def test_new_key_round_trips_through_its_printed_form() -> None:
    material = credentials.new_api_key_material()
    parsed = credentials.split_api_key(material.full_key)
    assert parsed == material
    assert credentials.api_key_matches(material.secret_hash, parsed.secret)
    assert not credentials.api_key_matches(material.secret_hash, parsed.secret + "x")
    assert not credentials.api_key_matches(None, parsed.secret)


@given(st.text(max_size=80))
def test_anything_that_is_not_a_key_is_rejected_without_error(text: str) -> None:
    parsed = credentials.split_api_key(text)
    if parsed is not None:
        assert text == parsed.full_key


def test_password_hash_verifies_only_the_right_password() -> None:
    hashed = credentials.hash_password("a long passphrase")
    assert credentials.verify_password(hashed, "a long passphrase")
    assert not credentials.verify_password(hashed, "a long passphrasE")
    assert not credentials.verify_password(None, "a long passphrase")
    assert not credentials.verify_password("not-a-hash", "x")


def test_tokens_expire_and_are_bound_to_the_secret() -> None:
    now = datetime.now(UTC)
    user, sid = uuid.uuid4(), uuid.uuid4()
    secret = "s" * 40
    token = credentials.issue_access_token(secret, user, sid, now, now + timedelta(minutes=5))
    claims = credentials.read_access_token(secret, token)
    assert claims is not None and claims.user_id == user and claims.session_id == sid
    assert credentials.read_access_token("t" * 40, token) is None
    expired = credentials.issue_access_token(
        secret, user, sid, now - timedelta(hours=2), now - timedelta(hours=1)
    )
    assert credentials.read_access_token(secret, expired) is None


def test_money_displays_fen_as_yuan_with_currency() -> None:
    assert Money.fen(1299).display() == "12.99 CNY"
    assert Money.fen(-5).display() == "-0.05 CNY"


def test_business_day_is_counted_in_the_store_time_zone() -> None:
    late_utc = datetime(2026, 1, 1, 17, 30, tzinfo=UTC)  # 01:30 on 2 January in Shanghai
    assert business_day(late_utc, "Asia/Shanghai").isoformat() == "2026-01-02"
    assert business_day(late_utc, "Europe/London").isoformat() == "2026-01-01"
