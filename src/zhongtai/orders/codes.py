"""Codes handed to customers: pickup codes and their QR, business days, receipt numbers."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from zhongtai.core.auth.principal import TERMINAL_ID
from zhongtai.core.clock import as_utc

PICKUP_CODE_DIGITS = 6
QR_VERSION = "ztp1"
_PICKUP_CODE = re.compile(rf"[0-9]{{{PICKUP_CODE_DIGITS}}}")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")

# Each use of the secret is bound to its purpose, so a digest stored for one never passes as
# the signature of another (a leaked code digest is not a valid QR signature).
_DIGEST_PURPOSE = b"zhongtai.pickup-code.v1:"
_QR_PURPOSE = b"zhongtai.pickup-qr.v1:"


def new_pickup_code() -> str:
    """A fresh 6-digit pickup code from the operating system's secure random source."""
    return f"{secrets.randbelow(10**PICKUP_CODE_DIGITS):0{PICKUP_CODE_DIGITS}d}"


def _mac(secret: str, purpose: bytes, message: str) -> str:
    return hmac.new(secret.encode(), purpose + message.encode(), hashlib.sha256).hexdigest()


def pickup_code_digest(secret: str, order_id: uuid.UUID, code: str) -> str:
    """What the database keeps of a pickup code: HMAC-SHA256 hex, keyed and bound to the order.

    Without the secret, a leaked table cannot be turned back into codes, not even by trying
    all million of them; the same code on two orders gives two digests.
    """
    return _mac(secret, _DIGEST_PURPOSE, f"{order_id}:{code}")


def pickup_code_matches(secret: str, order_id: uuid.UUID, code: str, digest: str) -> bool:
    """Whether ``code`` is the order's pickup code, compared in constant time."""
    return hmac.compare_digest(pickup_code_digest(secret, order_id, code), digest)


@dataclass(frozen=True)
class PickupQr:
    order_id: uuid.UUID
    code: str


class InvalidPickupQr(ValueError):
    """A scanned text that is not a pickup QR signed by this platform; the message says why."""


def pickup_qr_payload(secret: str, order_id: uuid.UUID, code: str) -> str:
    """The text of the pickup QR: ``ztp1.<order_id>.<code>.<signature>`` (hex HMAC-SHA256).

    Signed so a clerk's scanner can trust the order and code it reads; the version prefix lets
    a later format live beside this one.
    """
    if not _PICKUP_CODE.fullmatch(code):
        raise ValueError(f"a pickup code is {PICKUP_CODE_DIGITS} digits")
    body = f"{QR_VERSION}.{order_id}.{code}"
    return f"{body}.{_mac(secret, _QR_PURPOSE, body)}"


def read_pickup_qr(secret: str, payload: str) -> PickupQr:
    """The order and code of a scanned pickup QR, or :class:`InvalidPickupQr` if altered."""
    parts = payload.strip().split(".")
    if len(parts) != 4:
        raise InvalidPickupQr("is not a pickup QR: expected ztp1.<order>.<code>.<signature>")
    version, order_text, code, signature = parts
    if version != QR_VERSION:
        raise InvalidPickupQr(f"has version {version!r}; this platform reads {QR_VERSION!r}")
    try:
        order_id = uuid.UUID(order_text)
    except ValueError:
        raise InvalidPickupQr("does not name an order id") from None
    if not _PICKUP_CODE.fullmatch(code) or not _HEX_SIGNATURE.fullmatch(signature):
        raise InvalidPickupQr("is malformed: the code or the signature has the wrong shape")
    expected = _mac(secret, _QR_PURPOSE, f"{version}.{order_text}.{code}")
    if not hmac.compare_digest(expected, signature):
        raise InvalidPickupQr("has a signature that does not match: it was altered or forged")
    return PickupQr(order_id=order_id, code=code)


# --- business days and receipts --------------------------------------------------------------

DAY_STARTS = time(4, 0)


def business_date(moment_utc: datetime, timezone: str, day_starts: time = DAY_STARTS) -> date:
    """The store's business day of a moment: local date, counted from ``day_starts`` local time.

    A sale at 01:30 local belongs to the day before (the late shift closes that day's till).
    """
    local = as_utc(moment_utc).astimezone(ZoneInfo(timezone))
    day = local.date()
    if local.time() < day_starts:
        day -= timedelta(days=1)
    return day


RECEIPT_SEQUENCE_DIGITS = 6
_STORE_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")  # as stores accept them
_RECEIPT = re.compile(
    r"(?P<store>[A-Za-z0-9_-]{1,32})-(?P<terminal>[A-Za-z0-9_]{1,16})"
    rf"-(?P<day>[0-9]{{8}})-(?P<sequence>[0-9]{{{RECEIPT_SEQUENCE_DIGITS}}})"
)


def is_terminal_code(text: str) -> bool:
    """Whether ``text`` can stand for a terminal in a receipt number."""
    return TERMINAL_ID.fullmatch(text) is not None


class InvalidReceiptNumber(ValueError):
    """Text that is not a receipt number; the message says what is expected."""


@dataclass(frozen=True)
class ReceiptNumber:
    store_code: str
    terminal_code: str
    business_date: date
    sequence: int

    def __str__(self) -> str:
        return receipt_number(
            self.store_code, self.terminal_code, self.business_date, self.sequence
        )


def receipt_number(store_code: str, terminal_code: str, business_date: date, sequence: int) -> str:
    """``SH001-T02-20261126-000123``: store, terminal, business day, the day's sequence from 1."""
    if not _STORE_CODE.fullmatch(store_code):
        raise ValueError(f"store code {store_code!r} is not 1-32 letters, digits, _ or -")
    if not is_terminal_code(terminal_code):
        raise ValueError(f"terminal code {terminal_code!r} is not 1-16 letters, digits or _")
    if not 1 <= sequence < 10**RECEIPT_SEQUENCE_DIGITS:
        raise ValueError(f"a receipt sequence is 1 to {10**RECEIPT_SEQUENCE_DIGITS - 1}")
    return (
        f"{store_code}-{terminal_code}-{business_date:%Y%m%d}"
        f"-{sequence:0{RECEIPT_SEQUENCE_DIGITS}d}"
    )


def parse_receipt_number(text: str) -> ReceiptNumber:
    """The parts of a receipt number, or :class:`InvalidReceiptNumber` saying what is expected."""
    found = _RECEIPT.fullmatch(text.strip())
    if found is None:
        raise InvalidReceiptNumber(
            f"{text!r} is not a receipt number like SH001-T02-20261126-000123 "
            "(store-terminal-yyyymmdd-sequence)"
        )
    try:
        day = date.fromisoformat(found["day"])
    except ValueError:
        raise InvalidReceiptNumber(f"{found['day']} in {text!r} is not a date") from None
    sequence = int(found["sequence"])
    if sequence == 0:
        raise InvalidReceiptNumber(f"{text!r} has sequence 0; receipts count from 1")
    return ReceiptNumber(found["store"], found["terminal"], day, sequence)
