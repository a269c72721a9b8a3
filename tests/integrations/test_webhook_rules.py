"""Webhook signatures verify only the exact body and a recent timestamp, during a secret
rotation's overlap with either secret (also with the snippet docs/webhooks.md gives receivers);
backoff grows, bounded."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.integrations.rules import (
    backoff_seconds,
    signature_header,
    subscription_matches,
    verify_signature,
)

SECRET = "whsec_test_0123456789abcdef"


def test_a_signature_verifies_with_the_secret_and_the_exact_body() -> None:
    header = signature_header(SECRET, 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(SECRET, header, b'{"a":1}', now=1_700_000_010)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("another-secret-0123456789", b'{"a":1}', 1_700_000_010),
        (SECRET, b'{"a":2}', 1_700_000_010),
        (SECRET, b'{"a":1}', 1_700_000_000 + 301),
    ],
    ids=["wrong secret", "tampered body", "replayed too late"],
)
def test_a_signature_fails_for_another_secret_body_or_an_old_timestamp(
    secret: str, body: bytes, now: int
) -> None:
    header = signature_header(SECRET, 1_700_000_000, b'{"a":1}')
    assert not verify_signature(secret, header, body, now=now)


OLD = "whsec_old_0123456789abcdef"


def test_during_an_overlap_the_header_verifies_with_the_new_secret_and_the_old_one() -> None:
    header = signature_header(SECRET, 1_700_000_000, b'{"a":1}', [OLD])
    assert header.count("v1=") == 2
    assert verify_signature(SECRET, header, b'{"a":1}', now=1_700_000_010)
    assert verify_signature(OLD, header, b'{"a":1}', now=1_700_000_010)
    assert not verify_signature("whsec_other_0123456789", header, b'{"a":1}', now=1_700_000_010)
    assert not verify_signature(OLD, header, b'{"a":2}', now=1_700_000_010)


def _documented_verify() -> Callable[..., bool]:
    """The receiver's ``verify`` exactly as docs/webhooks.md prints it."""
    page = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    section = page.split("### Verifying a delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)  # noqa: S102 (the project's own documentation, run as printed)
    return scope["verify"]  # type: ignore[no-any-return]


def test_the_documented_snippet_verifies_either_secret_of_an_overlap_and_nothing_else() -> None:
    verify = _documented_verify()
    body, now = b'{"id":"e1"}', int(time.time())
    rotating = signature_header(SECRET, now, body, [OLD])
    assert verify(SECRET, rotating, body) and verify(OLD, rotating, body)
    assert verify(SECRET, signature_header(SECRET, now, body), body)
    assert not verify("whsec_other_0123456789", rotating, body)
    assert not verify(SECRET, rotating, body + b" ")
    assert not verify(SECRET, signature_header(SECRET, now - 301, body, [OLD]), body)
    assert not verify(SECRET, "v1=abc", body)
    assert not verify(SECRET, "t=x,v1=abc", body)


def test_a_receiver_reading_one_v1_entry_keeps_verifying_with_the_old_secret() -> None:
    # Receivers written before rotation existed read the header into a dict: the last v1 wins.
    body, now = b"{}", 1_700_000_000
    parts = dict(
        item.split("=", 1) for item in signature_header(SECRET, now, body, [OLD]).split(",")
    )
    assert verify_signature(OLD, f"t={parts['t']},v1={parts['v1']}", body, now=now)


def test_a_malformed_signature_header_does_not_verify() -> None:
    assert not verify_signature(SECRET, "v1=abc", b"{}", now=0)
    assert not verify_signature(SECRET, "t=x,v1=abc", b"{}", now=0)


@given(
    attempt=st.integers(min_value=1, max_value=200),
    jitter=st.floats(min_value=0, max_value=1),
)
def test_backoff_stays_between_half_and_all_of_the_capped_exponential(
    attempt: int, jitter: float
) -> None:
    delay = backoff_seconds(attempt, base=2, cap=3600, jitter=jitter)
    nominal = min(3600.0, 2.0 * 2 ** min(attempt - 1, 62))
    assert nominal / 2 <= delay <= nominal


def test_backoff_doubles_per_attempt_until_the_cap() -> None:
    delays = [backoff_seconds(a, base=1, cap=60, jitter=1.0) for a in range(1, 9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_store_filter_takes_that_stores_events_and_no_chain_events() -> None:
    assert subscription_matches(["a.b"], None, "a.b", None)
    assert subscription_matches(["a.b"], ["s1"], "a.b", "s1")
    assert not subscription_matches(["a.b"], ["s1"], "a.b", "s2")
    assert not subscription_matches(["a.b"], ["s1"], "a.b", None)
    assert not subscription_matches(["a.b"], None, "a.c", None)
