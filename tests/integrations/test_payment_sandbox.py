"""The sandbox payment gateway: answers like a provider, and its notifications are real signed POSTs
that arrive duplicated, out of order or late exactly when asked to, and never lie about money."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integrations.receiver import Received, Receiver, http_receiver
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.integrations.payments import (
    CallbackRejected,
    NotificationKind,
    PaymentNotification,
    PaymentProviderUnavailable,
    PaymentRequest,
    PaymentStatus,
    RefundExceedsCaptured,
    SandboxPaymentGateway,
)
from zhongtai.integrations.rules import SIGNATURE_HEADER, signature_header
from zhongtai.orders.kinds import TenderType

SECRET = "merchant-secret"
PATH = "/payments/sandbox/notify"


@pytest.fixture
def gateway() -> Iterator[SandboxPaymentGateway]:
    with SandboxPaymentGateway(SECRET, retry_base_seconds=0.01, retry_cap_seconds=0.05) as g:
        yield g


def _request(
    receiver: Receiver,
    amount_fen: int = 12_300,
    tender: TenderType = TenderType.BANK_CARD,
    *,
    capture: bool = True,
    payment_id: uuid.UUID | None = None,
) -> PaymentRequest:
    return PaymentRequest(
        payment_id=payment_id or uuid.uuid4(),
        order_id=uuid.uuid4(),
        amount_fen=amount_fen,
        tender=tender,
        notify_url=receiver.url + PATH,
        capture=capture,
    )


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _notifications(
    gateway: SandboxPaymentGateway, receiver: Receiver, count: int
) -> list[PaymentNotification]:
    _wait_until(lambda: len(receiver.bodies(PATH)) >= count, f"{count} notifications")
    received = receiver.bodies(PATH)
    assert len(received) == count
    return [gateway.parse_notification(r.headers, r.body) for r in received]


def _resigned(received: Received, timestamp: int, body: bytes | None = None) -> dict[str, str]:
    headers = {k: v for k, v in received.headers.items() if k.lower() != SIGNATURE_HEADER.lower()}
    headers[SIGNATURE_HEADER] = signature_header(SECRET, timestamp, body or received.body)
    return headers


# --- answers and notifications ------------------------------------------------------------------


def test_card_payment_is_captured_at_once_and_notified_by_a_signed_post(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    request = _request(receiver, 12_300)

    answer = gateway.authorize(request)

    assert answer.status is PaymentStatus.CAPTURED
    assert answer.captured_fen == 12_300
    (note,) = _notifications(gateway, receiver, 1)
    assert note.kind is NotificationKind.CAPTURED
    assert note.provider_ref == answer.provider_ref
    assert note.payment_id == request.payment_id
    assert note.order_id == request.order_id
    assert (note.amount_fen, note.captured_fen, note.sequence) == (12_300, 12_300, 1)


def test_wallet_payment_waits_for_the_customer_to_confirm_in_the_app(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    answer = gateway.authorize(_request(receiver, 5_000, TenderType.WECHAT_PAY))

    assert answer.status is PaymentStatus.PENDING
    assert answer.customer_action is not None
    assert gateway.drain(timeout=10)
    assert receiver.bodies(PATH) == []

    confirmed = gateway.customer_confirms(answer.provider_ref)

    assert confirmed.status is PaymentStatus.CAPTURED
    (note,) = _notifications(gateway, receiver, 1)
    assert (note.kind, note.amount_fen) == (NotificationKind.CAPTURED, 5_000)


def test_a_wallet_payment_is_confirmed_only_once(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    answer = gateway.authorize(_request(receiver, 5_000, TenderType.ALIPAY))
    gateway.customer_confirms(answer.provider_ref)

    with pytest.raises(Conflict, match="only a pending wallet payment"):
        gateway.customer_confirms(answer.provider_ref)


def test_a_voided_wallet_payment_can_no_longer_be_approved_and_is_notified_once(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    answer = gateway.authorize(_request(receiver, 5_000, TenderType.WECHAT_PAY))

    voided = gateway.void(answer.provider_ref)
    again = gateway.void(answer.provider_ref)

    assert voided.status is again.status is PaymentStatus.VOIDED
    with pytest.raises(Conflict, match="only a pending wallet payment"):
        gateway.customer_confirms(answer.provider_ref)
    (note,) = _notifications(gateway, receiver, 1)
    assert (note.kind, note.status, note.amount_fen) == (
        NotificationKind.VOIDED,
        PaymentStatus.VOIDED,
        5_000,
    )


def test_voiding_a_captured_payment_answers_it_captured_and_changes_nothing(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    answer = gateway.authorize(_request(receiver, 5_000))

    voided = gateway.void(answer.provider_ref)

    assert (voided.status, voided.captured_fen) == (PaymentStatus.CAPTURED, 5_000)
    (note,) = _notifications(gateway, receiver, 1)
    assert note.kind is NotificationKind.CAPTURED


def test_amount_ending_in_04_is_declined_and_notified_as_failed(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    answer = gateway.authorize(_request(receiver, 1_204))

    assert answer.status is PaymentStatus.DECLINED
    assert answer.decline_reason == "insufficient funds"
    (note,) = _notifications(gateway, receiver, 1)
    assert (note.kind, note.failure_reason) == (NotificationKind.FAILED, "insufficient funds")
    assert note.captured_fen == 0


def test_wallet_amount_ending_in_04_fails_when_the_customer_confirms(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    answer = gateway.authorize(_request(receiver, 1_204, TenderType.ALIPAY))
    assert answer.status is PaymentStatus.PENDING

    assert gateway.customer_confirms(answer.provider_ref).status is PaymentStatus.DECLINED
    (note,) = _notifications(gateway, receiver, 1)
    assert note.kind is NotificationKind.FAILED


def test_amount_ending_in_08_is_unavailable_once_and_the_retry_goes_through(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    request = _request(receiver, 2_008)

    with pytest.raises(PaymentProviderUnavailable):
        gateway.authorize(request)
    answer = gateway.authorize(request)

    assert answer.status is PaymentStatus.CAPTURED
    assert len(_notifications(gateway, receiver, 1)) == 1


def test_authorizing_the_same_payment_id_again_charges_once(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    request = _request(receiver, 9_900)

    first = gateway.authorize(request)
    again = gateway.authorize(request)

    assert again == first
    assert gateway.drain(timeout=10)
    assert len(receiver.bodies(PATH)) == 1


def test_a_payment_id_reused_for_another_amount_is_refused(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    request = _request(receiver, 9_900)
    gateway.authorize(request)

    with pytest.raises(Conflict, match="already requested with other details"):
        gateway.authorize(_request(receiver, 9_800, payment_id=request.payment_id))


def test_cash_is_not_a_provider_tender(receiver: Receiver) -> None:
    with pytest.raises(InvalidInput, match="not settled by a payment provider"):
        _request(receiver, 100, TenderType.CASH)


# --- capture and refund -----------------------------------------------------------------------


def test_held_card_payment_is_captured_for_what_was_picked(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    held = gateway.authorize(_request(receiver, 10_000, capture=False))
    assert (held.status, held.authorized_fen, held.captured_fen) == (
        PaymentStatus.AUTHORIZED,
        10_000,
        0,
    )

    with pytest.raises(InvalidInput, match="10000 fen authorised"):
        gateway.capture(held.provider_ref, 10_001)
    captured = gateway.capture(held.provider_ref, 8_650)

    assert (captured.status, captured.captured_fen) == (PaymentStatus.CAPTURED, 8_650)
    assert gateway.capture(held.provider_ref, 8_650) == captured
    kinds = [(n.kind, n.amount_fen) for n in _notifications(gateway, receiver, 2)]
    assert kinds == [(NotificationKind.AUTHORIZED, 10_000), (NotificationKind.CAPTURED, 8_650)]


def test_refunds_never_exceed_what_was_captured(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    paid = gateway.authorize(_request(receiver, 1_000))
    gateway.refund(paid.provider_ref, uuid.uuid4(), 600)

    with pytest.raises(RefundExceedsCaptured, match="400 fen left") as refused:
        gateway.refund(paid.provider_ref, uuid.uuid4(), 500)
    assert refused.value.extra["refundable_fen"] == 400
    last = gateway.refund(paid.provider_ref, uuid.uuid4(), 400)

    assert (last.captured_fen, last.refunded_fen) == (1_000, 1_000)
    with pytest.raises(RefundExceedsCaptured):
        gateway.refund(paid.provider_ref, uuid.uuid4(), 1)


def test_a_refund_repeated_with_its_refund_id_pays_back_once(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    paid = gateway.authorize(_request(receiver, 1_000))
    refund_id = uuid.uuid4()

    first = gateway.refund(paid.provider_ref, refund_id, 300)
    again = gateway.refund(paid.provider_ref, refund_id, 300)

    assert first == again
    assert again.refunded_fen == 300
    with pytest.raises(Conflict, match="already made for 300 fen"):
        gateway.refund(paid.provider_ref, refund_id, 200)
    refund = _notifications(gateway, receiver, 2)[1]
    assert (refund.kind, refund.refund_id, refund.amount_fen) == (
        NotificationKind.REFUNDED,
        refund_id,
        300,
    )


def test_money_only_held_cannot_be_refunded(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    held = gateway.authorize(_request(receiver, 1_000, capture=False))

    with pytest.raises(Conflict, match="only captured money is refunded"):
        gateway.refund(held.provider_ref, uuid.uuid4(), 100)


@settings(max_examples=40, deadline=None)
@given(refunds=st.lists(st.integers(min_value=1, max_value=3_000), max_size=8))
def test_whatever_refunds_are_asked_the_refunded_total_stays_within_the_capture(
    refunds: list[int],
) -> None:
    with SandboxPaymentGateway(SECRET, notify=False) as gateway:
        request = PaymentRequest(
            payment_id=uuid.uuid4(),
            order_id=uuid.uuid4(),
            amount_fen=5_000,
            tender=TenderType.BANK_CARD,
            notify_url="http://127.0.0.1:9/unused",
        )
        ref = gateway.authorize(request).provider_ref
        granted = 0
        for amount in refunds:
            try:
                granted = gateway.refund(ref, uuid.uuid4(), amount).refunded_fen
            except RefundExceedsCaptured:
                assert granted + amount > 5_000
        assert granted == gateway.status(ref).refunded_fen <= 5_000


# --- signatures ---------------------------------------------------------------------------------


def test_a_tampered_notification_is_rejected(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    gateway.authorize(_request(receiver, 12_300))
    _wait_until(lambda: len(receiver.bodies(PATH)) == 1, "the notification")
    (received,) = receiver.bodies(PATH)

    with pytest.raises(CallbackRejected):
        gateway.parse_notification(received.headers, received.body.replace(b"12300", b"99900"))


def test_a_notification_signed_with_another_secret_or_none_is_rejected(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    gateway.authorize(_request(receiver, 12_300))
    _wait_until(lambda: len(receiver.bodies(PATH)) == 1, "the notification")
    (received,) = receiver.bodies(PATH)
    forged = {SIGNATURE_HEADER: signature_header("guess", int(time.time()), received.body)}

    with pytest.raises(CallbackRejected, match="does not sign this body"):
        gateway.parse_notification(forged, received.body)
    with pytest.raises(CallbackRejected, match="missing"):
        gateway.parse_notification({"Content-Type": "application/json"}, received.body)


def test_a_notification_signed_long_ago_is_rejected_and_a_recent_one_accepted(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    gateway.authorize(_request(receiver, 12_300))
    _wait_until(lambda: len(receiver.bodies(PATH)) == 1, "the notification")
    (received,) = receiver.bodies(PATH)
    now = int(time.time())

    with pytest.raises(CallbackRejected, match="300 s"):
        gateway.parse_notification(_resigned(received, now - 600), received.body)
    accepted = gateway.parse_notification(_resigned(received, now - 60), received.body)
    assert accepted.amount_fen == 12_300


# --- delivery: duplicates, order, retries -------------------------------------------------------


def test_duplicate_mode_delivers_every_notification_twice_as_the_same_event(
    receiver: Receiver,
) -> None:
    with SandboxPaymentGateway(SECRET, duplicate=True) as gateway:
        gateway.authorize(_request(receiver, 4_500))
        first, second = _notifications(gateway, receiver, 2)

    assert first == second


def test_resend_delivers_an_earlier_notification_again(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    paid = gateway.authorize(_request(receiver, 4_500))
    gateway.refund(paid.provider_ref, uuid.uuid4(), 500)
    _wait_until(lambda: len(receiver.bodies(PATH)) == 2, "two notifications")

    gateway.resend(paid.provider_ref, 1)

    notes = _notifications(gateway, receiver, 3)
    assert [n.sequence for n in notes] == [1, 2, 1]
    assert notes[2] == notes[0]


def test_out_of_order_notifications_arrive_newest_first_and_sequence_tells_which_is_current(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    with gateway.out_of_order():
        held = gateway.authorize(_request(receiver, 3_000, capture=False))
        gateway.capture(held.provider_ref, 3_000)
        gateway.refund(held.provider_ref, uuid.uuid4(), 1_000)

    notes = _notifications(gateway, receiver, 3)
    assert [n.kind for n in notes] == [
        NotificationKind.REFUNDED,
        NotificationKind.CAPTURED,
        NotificationKind.AUTHORIZED,
    ]
    current = max(notes, key=lambda n: n.sequence)
    assert (current.status, current.captured_fen, current.refunded_fen) == (
        PaymentStatus.CAPTURED,
        3_000,
        1_000,
    )


def test_a_receiver_that_is_down_is_retried_until_it_recovers(
    gateway: SandboxPaymentGateway, receiver: Receiver
) -> None:
    receiver.failures_left[PATH] = 3

    gateway.authorize(_request(receiver, 7_700))

    (note,) = _notifications(gateway, receiver, 1)
    assert gateway.drain(timeout=10)  # the 204 is logged just after the receiver records it
    attempts = [a for a in gateway.delivery_attempts() if a.event_id == note.event_id]
    assert [a.status_code for a in attempts] == [500, 500, 500, 204]
    assert attempts[-1].delivered


def test_a_receiver_that_refuses_connections_is_tried_again(
    gateway: SandboxPaymentGateway,
) -> None:
    with http_receiver() as gone:
        url = gone.url
    paid_to = PaymentRequest(
        payment_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        amount_fen=2_500,
        tender=TenderType.BANK_CARD,
        notify_url=url + PATH,
    )
    gateway.authorize(paid_to)

    _wait_until(lambda: len(gateway.delivery_attempts()) >= 2, "two refused connections")
    assert not any(a.delivered for a in gateway.delivery_attempts())
    assert all(a.status_code is None for a in gateway.delivery_attempts())


def test_without_notify_nothing_is_posted_but_the_signed_requests_are_handed_over(
    receiver: Receiver,
) -> None:
    with SandboxPaymentGateway(SECRET, notify=False) as gateway:
        paid = gateway.authorize(_request(receiver, 6_600))
        assert gateway.drain(timeout=10)
        (signed,) = gateway.signed_notifications(paid.provider_ref)

        note = gateway.parse_notification(signed.headers, signed.body)

    assert receiver.received == []
    assert signed.url == receiver.url + PATH
    assert (note.kind, note.amount_fen) == (NotificationKind.CAPTURED, 6_600)
