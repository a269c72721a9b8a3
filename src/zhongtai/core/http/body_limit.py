"""A limit on the size of request bodies: pure ASGI middleware counting the bytes as they arrive.

The middleware gives every request an allowance (``max_body_bytes``) and reads its body through
it: a body whose ``Content-Length`` exceeds the allowance is refused before a byte of it is
read, and a streamed (chunked) one as soon as the bytes received pass it, without reading the
rest. A route that takes bulk bodies (imports, the POS offline batch) declares it where it is,
with :func:`accepts_bulk_body`; its route class raises the allowance to ``max_bulk_body_bytes``
before the endpoint reads anything (:func:`admit`), and refuses a declared length beyond it
before the endpoint runs, whether or not the endpoint would read the body.

A refusal is 413 ``request-too-large`` (problem+json, with ``max_bytes``) and
``Connection: close``, so a client stops sending the rest. It is raised before the endpoint
runs or while its body is read, before anything is written: the request changes nothing and
binds no Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhongtai.core.errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE

#: Where a request's allowance lives in its ASGI scope.
SCOPE_KEY = "zhongtai.body_allowance"
_BULK = "__zhongtai_accepts_bulk_body__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class RequestBodyTooLarge(HTTPException):
    """The body is larger than the route accepts.

    A Starlette HTTPException, so that FastAPI lets it through when it is raised while the
    body is parsed (any other error there becomes a 400); answered as problem+json by the
    handler :func:`zhongtai.core.http.problems.install_problem_handlers` registers.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than the {max_bytes} bytes this route accepts; none "
            "of it was kept. Send less (split a batch into smaller ones).",
            headers={"Connection": "close"},
        )
        self.max_bytes = max_bytes

    def to_problem(self, instance: str) -> dict[str, Any]:
        return {
            "type": PROBLEM_BASE + "request-too-large",
            "title": "The request body is too large",
            "status": 413,
            "detail": self.detail,
            "instance": instance,
            "max_bytes": self.max_bytes,
        }


def accepts_bulk_body(endpoint: Endpoint) -> Endpoint:
    """Let this route's requests carry bodies up to ``max_bulk_body_bytes`` (not the usual
    ``max_body_bytes``): for batches (imports, an offline till's queue)."""
    setattr(endpoint, _BULK, True)
    return endpoint


def declares_bulk_body(endpoint: Callable[..., Any]) -> bool:
    return bool(getattr(endpoint, _BULK, False))


class BodyAllowance:
    """What a request may still send, and the ``receive`` that enforces it."""

    __slots__ = ("_receive", "bulk_max_bytes", "declared", "max_bytes", "received")

    def __init__(self, receive: Receive, declared: int | None, max_bytes: int, bulk: int) -> None:
        self._receive = receive
        self.declared = declared
        self.max_bytes = max_bytes
        self.bulk_max_bytes = bulk
        self.received = 0

    def refuse_declared(self) -> None:
        if self.declared is not None and self.declared > self.max_bytes:
            raise RequestBodyTooLarge(self.max_bytes)

    async def receive(self) -> Message:
        self.refuse_declared()
        if self.received > self.max_bytes:
            raise RequestBodyTooLarge(self.max_bytes)  # read no more of it
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                raise RequestBodyTooLarge(self.max_bytes)
        return message


def admit(scope: Scope, *, bulk: bool) -> None:
    """Called by the route class before its endpoint runs: set the route's allowance, and
    refuse a declared length beyond it (even if the endpoint would never read the body)."""
    allowance: BodyAllowance | None = scope.get(SCOPE_KEY)
    if allowance is None:
        return  # an application built without the middleware
    if bulk:
        allowance.max_bytes = allowance.bulk_max_bytes
    allowance.refuse_declared()


class BodySizeLimitMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): reads every request body through a
    :class:`BodyAllowance` of ``max_bytes`` (a bulk route's of ``bulk_max_bytes``)."""

    def __init__(self, app: ASGIApp, max_bytes: int, bulk_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.bulk_max_bytes = max(bulk_max_bytes, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.bulk_max_bytes:
            # More than any route accepts: refused before routing, authentication or anything.
            await _answer(scope, receive, send, RequestBodyTooLarge(self.bulk_max_bytes))
            return
        # A refusal raised while the body is read is answered by the application's handler
        # (problems.py), in the request's own unwinding: its transaction rolls back.
        allowance = BodyAllowance(receive, declared, self.max_bytes, self.bulk_max_bytes)
        scope[SCOPE_KEY] = allowance
        await self.app(scope, allowance.receive, send)


async def _answer(scope: Scope, receive: Receive, send: Send, refused: RequestBodyTooLarge) -> None:
    response = JSONResponse(
        refused.to_problem(scope["path"]),
        status_code=413,
        headers=refused.headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses such a request itself
    return None
