"""The sandbox payment gateway: an in-process provider that answers like a real one and calls back.

Behaviour, by tender:

- WeChat Pay and Alipay answer ``pending`` with a ``customer_action`` to show; the payment moves
  on when ``customer_confirms(provider_ref)`` plays the customer approving it in the wallet.
- Bank cards and stored value answer at once: ``captured`` (or ``authorized`` when the request
  says ``capture=False``).

Magic amounts, by the last two digits of ``amount_fen`` (so tests and demos can choose):

- ``…04`` (e.g. 1204 fen = ¥12.04): declined, "insufficient funds" — at once for cards and
  stored value, when the customer confirms for wallets. A ``failed`` notification follows.
- ``…08``: the first ``authorize`` of that payment id raises ``PaymentProviderUnavailable``
  (nothing is recorded); a retry with the same payment id goes through.

Every change of a payment is a notification — a real signed HTTP POST to ``notify_url`` from a
background thread, retried with backoff until the receiver answers 2xx. Test hooks: the gateway's
``duplicate=True`` sends each notification twice; ``resend`` repeats one; notifications raised
inside ``with gateway.out_of_order():`` are sent in reverse order when the block ends;
``notify=False`` sends nothing and ``signed_notifications`` hands the signed requests over instead.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import TypeAdapter

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.integrations.payments.provider import (
    WALLET_TENDERS,
    NotificationKind,
    PaymentNotification,
    PaymentProviderUnavailable,
    PaymentRequest,
    PaymentStatus,
    ProviderResponse,
    RefundExceedsCaptured,
)
from zhongtai.integrations.signed_callbacks import (
    DEFAULT_TOLERANCE_SECONDS,
    SignedCallback,
    SignedCallbackProvider,
)

DECLINED_ENDING = 4
UNAVAILABLE_ONCE_ENDING = 8
INSUFFICIENT_FUNDS = "insufficient funds"

_NOTIFICATION = TypeAdapter(PaymentNotification)


@dataclass
class _Payment:
    request: PaymentRequest
    provider_ref: str
    status: PaymentStatus
    authorized_fen: int = 0
    captured_fen: int = 0
    refunded_fen: int = 0
    decline_reason: str | None = None
    refunds: dict[uuid.UUID, int] = field(default_factory=dict)
    #: (event id, body) of each notification; index = sequence - 1
    notifications: list[tuple[str, bytes]] = field(default_factory=list)


class SandboxPaymentGateway(SignedCallbackProvider):
    """An in-memory, thread-safe payment provider whose notifications are real HTTP callbacks."""

    name = "sandbox"

    def __init__(
        self,
        secret: str,
        *,
        notify: bool = True,
        duplicate: bool = False,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        retry_base_seconds: float = 0.05,
        retry_cap_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            secret,
            sender_name="sandbox-payment-notifications",
            tolerance_seconds=tolerance_seconds,
            retry_base_seconds=retry_base_seconds,
            retry_cap_seconds=retry_cap_seconds,
            clock=clock,
        )
        self.notify = notify
        self.duplicate = duplicate
        self._lock = threading.Lock()
        self._by_ref: dict[str, _Payment] = {}
        self._by_payment_id: dict[uuid.UUID, _Payment] = {}
        self._outage_seen: set[uuid.UUID] = set()
        self._held: list[tuple[str, str, bytes]] | None = None

    # --- the provider interface ---------------------------------------------------------------

    def authorize(self, request: PaymentRequest) -> ProviderResponse:
        with self._lock:
            known = self._by_payment_id.get(request.payment_id)
            if known is not None:
                if known.request != request:
                    raise Conflict(
                        f"payment {request.payment_id} was already requested with other details "
                        "(amount, tender, order or capture); a payment id names one request"
                    )
                return self._response(known)
            ending = request.amount_fen % 100
            if ending == UNAVAILABLE_ONCE_ENDING and request.payment_id not in self._outage_seen:
                self._outage_seen.add(request.payment_id)
                raise PaymentProviderUnavailable(
                    "the sandbox simulates an outage for amounts ending in 08; retry the same "
                    "payment id"
                )
            payment = _Payment(
                request=request,
                provider_ref=f"sbx_pay_{uuid.uuid4().hex}",
                status=PaymentStatus.PENDING,
            )
            self._by_ref[payment.provider_ref] = payment
            self._by_payment_id[request.payment_id] = payment
            if request.tender not in WALLET_TENDERS:
                self._settle(payment)
            return self._response(payment)

    def capture(self, provider_ref: str, amount_fen: int) -> ProviderResponse:
        with self._lock:
            payment = self._payment(provider_ref)
            if payment.status is PaymentStatus.CAPTURED:
                if payment.captured_fen == amount_fen:
                    return self._response(payment)
                raise Conflict(
                    f"payment {provider_ref} was already captured for {payment.captured_fen} fen; "
                    f"it cannot be captured again for {amount_fen} fen"
                )
            if payment.status is not PaymentStatus.AUTHORIZED:
                raise Conflict(
                    f"payment {provider_ref} is {payment.status}; only an authorised payment "
                    "can be captured"
                )
            if not 0 < amount_fen <= payment.authorized_fen:
                raise InvalidInput.field(
                    "amount_fen",
                    f"must be between 1 and the {payment.authorized_fen} fen authorised",
                )
            payment.status = PaymentStatus.CAPTURED
            payment.captured_fen = amount_fen
            self._notify(payment, NotificationKind.CAPTURED, amount_fen)
            return self._response(payment)

    def refund(self, provider_ref: str, refund_id: uuid.UUID, amount_fen: int) -> ProviderResponse:
        with self._lock:
            payment = self._payment(provider_ref)
            earlier = payment.refunds.get(refund_id)
            if earlier is not None:
                if earlier == amount_fen:
                    return self._response(payment)
                raise Conflict(
                    f"refund {refund_id} was already made for {earlier} fen; "
                    f"it cannot be repeated for {amount_fen} fen"
                )
            if payment.status is not PaymentStatus.CAPTURED:
                raise Conflict(
                    f"payment {provider_ref} is {payment.status}; only captured money is refunded"
                )
            if amount_fen <= 0:
                raise InvalidInput.field("amount_fen", "must be a positive number of fen")
            left = payment.captured_fen - payment.refunded_fen
            if amount_fen > left:
                raise RefundExceedsCaptured(
                    f"a refund of {amount_fen} fen exceeds what is left to refund: "
                    f"{payment.captured_fen} fen captured, {payment.refunded_fen} fen "
                    f"already refunded, {left} fen left",
                    refundable_fen=left,
                )
            payment.refunds[refund_id] = amount_fen
            payment.refunded_fen += amount_fen
            self._notify(payment, NotificationKind.REFUNDED, amount_fen, refund_id=refund_id)
            return self._response(payment)

    def void(self, provider_ref: str) -> ProviderResponse:
        with self._lock:
            payment = self._payment(provider_ref)
            if payment.status in (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED):
                released = payment.authorized_fen or payment.request.amount_fen
                payment.status = PaymentStatus.VOIDED
                self._notify(payment, NotificationKind.VOIDED, released)
            return self._response(payment)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotification:
        return self._read_callback(headers, body, _NOTIFICATION, "a payment notification")

    # --- the customer and the test hooks ----------------------------------------------------

    def customer_confirms(self, provider_ref: str) -> ProviderResponse:
        """The customer approves the payment in the WeChat/Alipay app."""
        with self._lock:
            payment = self._payment(provider_ref)
            if payment.status is not PaymentStatus.PENDING:
                raise Conflict(
                    f"payment {provider_ref} is {payment.status}; only a pending wallet payment "
                    "waits for the customer"
                )
            self._settle(payment)
            return self._response(payment)

    def status(self, provider_ref: str) -> ProviderResponse:
        with self._lock:
            return self._response(self._payment(provider_ref))

    def resend(self, provider_ref: str, sequence: int) -> None:
        """Deliver an earlier notification once more (same event id and sequence)."""
        with self._lock:
            payment = self._payment(provider_ref)
            if not 1 <= sequence <= len(payment.notifications):
                raise NotFound(f"payment {provider_ref} has no notification {sequence}")
            event_id, body = payment.notifications[sequence - 1]
            self._post(payment, event_id, body)

    @contextmanager
    def out_of_order(self) -> Iterator[None]:
        """Hold the notifications raised inside the block, then send them newest first."""
        with self._lock:
            if self._held is not None:
                raise RuntimeError("out_of_order blocks do not nest")
            self._held = []
        try:
            yield
        finally:
            with self._lock:
                held, self._held = self._held or [], None
                for url, event_id, body in reversed(held):
                    self._sender.send(url, event_id, body)

    def signed_notifications(self, provider_ref: str) -> list[SignedCallback]:
        """Every notification of a payment so far, signed now, as the gateway would POST it."""
        with self._lock:
            payment = self._payment(provider_ref)
            return self._signed_now(payment.request.notify_url, payment.notifications)

    # --- inside -----------------------------------------------------------------------------

    def _payment(self, provider_ref: str) -> _Payment:
        payment = self._by_ref.get(provider_ref)
        if payment is None:
            raise NotFound(f"the sandbox has no payment {provider_ref}")
        return payment

    def _settle(self, payment: _Payment) -> None:
        """The money decision: declined for the magic ending, else authorised or captured."""
        request = payment.request
        if request.amount_fen % 100 == DECLINED_ENDING:
            payment.status = PaymentStatus.DECLINED
            payment.decline_reason = INSUFFICIENT_FUNDS
            self._notify(payment, NotificationKind.FAILED, request.amount_fen)
            return
        payment.authorized_fen = request.amount_fen
        if request.capture:
            payment.status = PaymentStatus.CAPTURED
            payment.captured_fen = request.amount_fen
            self._notify(payment, NotificationKind.CAPTURED, request.amount_fen)
        else:
            payment.status = PaymentStatus.AUTHORIZED
            self._notify(payment, NotificationKind.AUTHORIZED, request.amount_fen)

    def _notify(
        self,
        payment: _Payment,
        kind: NotificationKind,
        amount_fen: int,
        *,
        refund_id: uuid.UUID | None = None,
    ) -> None:
        sequence = len(payment.notifications) + 1
        notification = PaymentNotification(
            event_id=f"sbx_evt_{uuid.uuid4().hex}",
            provider_ref=payment.provider_ref,
            payment_id=payment.request.payment_id,
            order_id=payment.request.order_id,
            kind=kind,
            status=payment.status,
            amount_fen=amount_fen,
            currency=payment.request.currency,
            authorized_fen=payment.authorized_fen,
            captured_fen=payment.captured_fen,
            refunded_fen=payment.refunded_fen,
            sequence=sequence,
            occurred_at=utcnow(),
            refund_id=refund_id,
            failure_reason=payment.decline_reason if kind is NotificationKind.FAILED else None,
        )
        body = _NOTIFICATION.dump_json(notification)
        payment.notifications.append((notification.event_id, body))
        for _ in range(2 if self.duplicate else 1):
            self._post(payment, notification.event_id, body)

    def _post(self, payment: _Payment, event_id: str, body: bytes) -> None:
        if not self.notify:
            return
        if self._held is not None:
            self._held.append((payment.request.notify_url, event_id, body))
            return
        self._sender.send(payment.request.notify_url, event_id, body)

    def _response(self, payment: _Payment) -> ProviderResponse:
        request = payment.request
        waiting = payment.status is PaymentStatus.PENDING
        return ProviderResponse(
            provider_ref=payment.provider_ref,
            payment_id=request.payment_id,
            status=payment.status,
            amount_fen=request.amount_fen,
            currency=request.currency,
            authorized_fen=payment.authorized_fen,
            captured_fen=payment.captured_fen,
            refunded_fen=payment.refunded_fen,
            decline_reason=payment.decline_reason,
            customer_action=(
                f"sandbox://{request.tender}/confirm/{payment.provider_ref}" if waiting else None
            ),
        )
