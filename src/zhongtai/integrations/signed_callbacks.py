"""Signed HTTP callbacks that the sandbox providers send from a background thread, and their check.

A callback is a JSON POST signed like our own webhooks (see ``integrations.rules``): the header
``Zhongtai-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of f"{t}." + body>`` under the secret
shared with the provider. Every attempt is signed afresh, so a callback retried for an hour still
passes the receiver's timestamp tolerance.

``CallbackSender`` owns one worker thread and one queue ordered by due time. The queue carries
deliveries (retried with capped exponential backoff while the receiver is down) and, for
simulations, timeline steps (a function to run at a moment, e.g. "the rider arrives").
``SignedCallbackProvider`` is what the in-process providers (the sandbox payment gateway, the
simulated courier fleet) share around it: the secret both sides sign with, the check of what
comes back, and the sender's log and life.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from zhongtai import __version__
from zhongtai.core.errors import DomainError, InvalidInput
from zhongtai.integrations.rules import (
    SIGNATURE_HEADER,
    backoff_seconds,
    signature_header,
    verify_signature,
)

log = logging.getLogger(__name__)

Callback = TypeVar("Callback")

DEFAULT_TOLERANCE_SECONDS = 300


class CallbackRejected(DomainError):
    """A provider callback whose signature or timestamp does not hold: it is not from them."""

    slug = "callback-rejected"
    status = 401
    title = "Callback signature rejected"


@dataclass(frozen=True)
class SignedCallback:
    """One callback ready to POST: where, with which headers, and the exact signed bytes."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class CallbackAttempt:
    """What happened to one POST of one callback (the sandbox's delivery log)."""

    event_id: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the bytes that are signed are the bytes that are sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def sign_callback(secret: str, url: str, body: bytes, *, now: int) -> SignedCallback:
    return SignedCallback(
        url=url,
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"Zhongtai-Sandbox/{__version__}",
            SIGNATURE_HEADER: signature_header(secret, now, body),
        },
        body=body,
    )


def read_signed_json(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """The callback's JSON object once its signature and timestamp hold; else ``CallbackRejected``.

    Header names are matched without regard to case, as HTTP has them.
    """
    wanted = SIGNATURE_HEADER.lower()
    header = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if header is None:
        raise CallbackRejected(f"the {SIGNATURE_HEADER} header is missing")
    if not verify_signature(secret, header, body, now=now, tolerance_seconds=tolerance_seconds):
        raise CallbackRejected(
            f"the {SIGNATURE_HEADER} header does not sign this body with our secret, "
            f"or its timestamp is more than {tolerance_seconds} s from now"
        )
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise CallbackRejected(f"the signed body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise CallbackRejected("the signed body is not a JSON object")
    return payload


@dataclass(order=True)
class _Job:
    due: float
    order: int
    run: Callable[[], None] = field(compare=False)


@dataclass
class _Delivery:
    event_id: str
    url: str
    body: bytes
    attempts: int = 0


class CallbackSender:
    """One background thread that runs timeline steps and POSTs signed callbacks, with retries."""

    def __init__(
        self,
        secret: str,
        *,
        name: str,
        retry_base_seconds: float = 0.05,
        retry_cap_seconds: float = 2.0,
        max_attempts: int = 100,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.retry_base_seconds = retry_base_seconds
        self.retry_cap_seconds = retry_cap_seconds
        self.max_attempts = max_attempts
        self.clock = clock
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self._queue: list[_Job] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._undelivered = 0
        self._stopping = False
        self._log: list[CallbackAttempt] = []
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    # --- what the providers call ------------------------------------------------------------

    def send(self, url: str, event_id: str, body: bytes) -> None:
        """Queue a callback; it is POSTed as soon as the worker gets to it, retried until 2xx."""
        delivery = _Delivery(event_id=event_id, url=url, body=body)
        with self._changed:
            self._undelivered += 1
            self._push(time.monotonic(), lambda: self._attempt(delivery))

    def call_later(self, delay_seconds: float, step: Callable[[], None]) -> None:
        """Run ``step`` on the worker thread after ``delay_seconds`` (a simulated timeline)."""
        with self._changed:
            self._push(time.monotonic() + max(0.0, delay_seconds), step)

    def signed(self, url: str, body: bytes) -> SignedCallback:
        """The callback as it would be POSTed now (for tests that forward it themselves)."""
        return sign_callback(self.secret, url, body, now=int(self.clock()))

    def drain(self, timeout: float) -> bool:
        """Wait until every queued callback is delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._undelivered:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def attempts(self) -> list[CallbackAttempt]:
        with self._changed:
            return list(self._log)

    def close(self) -> None:
        """Stop the worker (undelivered callbacks are dropped, as when a provider goes away)."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout=10)
        self._client.close()

    # --- the worker ---------------------------------------------------------------------------

    def _push(self, due: float, run: Callable[[], None]) -> None:
        heapq.heappush(self._queue, _Job(due, next(self._order), run))
        self._changed.notify_all()

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._stopping:
                    wait = self._queue[0].due - time.monotonic() if self._queue else None
                    if wait is not None and wait <= 0:
                        break
                    self._changed.wait(wait)
                if self._stopping:
                    return
                job = heapq.heappop(self._queue)
            try:
                job.run()
            except Exception:
                # A broken step must not stop the worker that every other callback relies on.
                log.exception("a sandbox timeline step failed")

    def _attempt(self, delivery: _Delivery) -> None:
        delivery.attempts += 1
        signed = sign_callback(self.secret, delivery.url, delivery.body, now=int(self.clock()))
        status_code: int | None = None
        try:
            response = self._client.post(signed.url, content=signed.body, headers=signed.headers)
            status_code = response.status_code
            error = None if response.is_success else f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._changed:
            self._log.append(
                CallbackAttempt(
                    delivery.event_id, delivery.url, delivery.attempts, status_code, error
                )
            )
            if error is None:
                self._settled()
            elif delivery.attempts >= self.max_attempts:
                log.warning(
                    "sandbox callback given up after %d attempts: %s (%s)",
                    delivery.attempts,
                    delivery.event_id,
                    error,
                )
                self._settled()
            else:
                # One sandbox talks to one receiver, so there is no herd to spread: no jitter.
                delay = backoff_seconds(
                    delivery.attempts,
                    base=self.retry_base_seconds,
                    cap=self.retry_cap_seconds,
                    jitter=1.0,
                )
                self._push(time.monotonic() + delay, lambda: self._attempt(delivery))

    def _settled(self) -> None:
        self._undelivered -= 1
        self._changed.notify_all()


class SignedCallbackProvider:
    """An in-process provider whose callbacks are signed HTTP POSTs sent by a ``CallbackSender``.

    It holds the secret shared with the receiver and reads callbacks back with it, and answers
    for the sender: its delivery log, waiting for it to drain, and closing it with the provider.
    """

    def __init__(
        self,
        secret: str,
        *,
        sender_name: str,
        tolerance_seconds: int,
        retry_base_seconds: float,
        retry_cap_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.tolerance_seconds = tolerance_seconds
        self.clock = clock
        self._secret = secret
        self._sender = CallbackSender(
            secret,
            name=sender_name,
            retry_base_seconds=retry_base_seconds,
            retry_cap_seconds=retry_cap_seconds,
            clock=clock,
        )

    def delivery_attempts(self) -> list[CallbackAttempt]:
        return self._sender.attempts()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every callback sent so far is delivered; False on timeout."""
        return self._sender.drain(timeout)

    def close(self) -> None:
        self._sender.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_callback(
        self, headers: Mapping[str, str], body: bytes, shape: TypeAdapter[Callback], what: str
    ) -> Callback:
        """A callback of ours, signed with our secret within the tolerance, read as ``shape``."""
        payload = read_signed_json(
            self._secret,
            headers,
            body,
            now=int(self.clock()),
            tolerance_seconds=self.tolerance_seconds,
        )
        try:
            return shape.validate_python(payload)
        except ValidationError as exc:
            raise InvalidInput(f"not {what}: {exc}") from exc

    def _signed_now(self, url: str, callbacks: list[tuple[str, bytes]]) -> list[SignedCallback]:
        """Each recorded (event id, body) signed now, as it would be POSTed to ``url``."""
        return [self._sender.signed(url, body) for _, body in callbacks]
