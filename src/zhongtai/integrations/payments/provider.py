"""The payment provider interface: what the orders context asks of a gateway and hears back.

Notifications are HTTP POSTs of JSON to the request's ``notify_url`` with the header
``Zhongtai-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of f"{t}." + body>`` under the
merchant secret shared with the provider; ``parse_notification`` refuses a bad signature or a
timestamp more than 300 s from now. Each notification carries the payment's state *after* the
event and a ``sequence`` that grows by one per event of that payment, so a receiver applies the
newest it has seen and ignores older or repeated ones (providers deliver at least once, in any
order). ``event_id`` names one event however often it is delivered.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from zhongtai.core.errors import Conflict, DomainError, InvalidInput
from zhongtai.orders.kinds import TenderType

#: Tenders a payment provider settles; cash, points and coupons never leave the platform.
PROVIDER_TENDERS = frozenset(
    {TenderType.WECHAT_PAY, TenderType.ALIPAY, TenderType.BANK_CARD, TenderType.STORED_VALUE}
)
#: The customer approves these in the wallet app, so authorising them answers ``pending``.
WALLET_TENDERS = frozenset({TenderType.WECHAT_PAY, TenderType.ALIPAY})

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class PaymentStatus(StrEnum):
    """Where a payment stands at the provider."""

    PENDING = "pending"  # waiting for the customer to confirm in the wallet
    AUTHORIZED = "authorized"  # funds held, not yet taken
    CAPTURED = "captured"  # funds taken (refunds do not change this; see refunded_fen)
    DECLINED = "declined"  # refused; final
    VOIDED = "voided"  # released before capture at the merchant's request; final


class NotificationKind(StrEnum):
    """What happened, as the provider notifies it."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"
    REFUNDED = "refunded"
    VOIDED = "voided"


class PaymentProviderUnavailable(DomainError):
    """The provider did not answer; the same call may be retried with the same ids."""

    slug = "payment-provider-unavailable"
    status = 503
    title = "The payment provider is unavailable"


class RefundExceedsCaptured(Conflict):
    """More would be refunded than was captured; ``refundable_fen`` says what is left."""

    slug = "refund-exceeds-captured"
    title = "Refund exceeds the captured amount"


@dataclass(frozen=True)
class PaymentRequest:
    """Ask to authorise (and maybe capture) one payment of one order.

    ``payment_id`` is our idempotency key at the provider: asking again with the same id answers
    the same payment instead of charging twice.
    """

    payment_id: uuid.UUID
    order_id: uuid.UUID
    amount_fen: int
    tender: TenderType
    notify_url: str
    currency: str = "CNY"
    capture: bool = True  # False: hold the funds now, capture what was picked later

    def __post_init__(self) -> None:
        if self.amount_fen <= 0:
            raise InvalidInput.field("amount_fen", "must be a positive number of fen")
        if self.tender not in PROVIDER_TENDERS:
            allowed = ", ".join(sorted(PROVIDER_TENDERS))
            raise InvalidInput.field(
                "tender", f"{self.tender} is not settled by a payment provider ({allowed} are)"
            )
        if not _CURRENCY.match(self.currency):
            raise InvalidInput.field("currency", "must be an ISO 4217 code such as CNY")
        if not self.notify_url.startswith(("http://", "https://")):
            raise InvalidInput.field("notify_url", "must be an http(s) URL")


@dataclass(frozen=True)
class ProviderResponse:
    """The payment as the provider holds it after a call."""

    provider_ref: str
    payment_id: uuid.UUID
    status: PaymentStatus
    amount_fen: int  # what was asked for
    currency: str
    authorized_fen: int
    captured_fen: int
    refunded_fen: int
    decline_reason: str | None = None
    #: for wallet tenders, the QR/deep-link payload the customer opens to confirm
    customer_action: str | None = None


@dataclass(frozen=True)
class PaymentNotification:
    """One verified asynchronous notification, with the payment's state after the event."""

    event_id: str
    provider_ref: str
    payment_id: uuid.UUID
    order_id: uuid.UUID
    kind: NotificationKind
    status: PaymentStatus
    amount_fen: int  # this event's amount: authorised, captured, refunded or failed
    currency: str
    authorized_fen: int
    captured_fen: int
    refunded_fen: int
    sequence: int  # 1, 2, 3 ... per payment; a lower one than already applied is stale
    occurred_at: datetime
    refund_id: uuid.UUID | None = None
    failure_reason: str | None = None


class PaymentProvider(Protocol):
    """A payment gateway (WeChat Pay, Alipay, a card acquirer, the sandbox)."""

    @property
    def name(self) -> str: ...

    def authorize(self, request: PaymentRequest) -> ProviderResponse:
        """Start a payment; idempotent by ``request.payment_id``."""
        ...

    def capture(self, provider_ref: str, amount_fen: int) -> ProviderResponse:
        """Take up to the authorised amount (less after a short pick); a repeat is harmless."""
        ...

    def refund(self, provider_ref: str, refund_id: uuid.UUID, amount_fen: int) -> ProviderResponse:
        """Give back part of what was captured; idempotent by ``refund_id``."""
        ...

    def void(self, provider_ref: str) -> ProviderResponse:
        """Release a payment not captured yet (a wallet payment the customer has not approved,
        an authorisation): it can no longer be paid and held funds are freed. A repeat is
        harmless. Answers the payment as it stands: voided, or captured (or declined) when that
        happened first -- a capture then has to be refunded."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotification:
        """Verify and read a notification; raises ``CallbackRejected`` when it is not genuine."""
        ...
