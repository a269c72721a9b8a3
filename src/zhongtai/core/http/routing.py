"""One transaction per request, and Idempotency-Key replay, for every route of the API.

Every router is built with :func:`api_router`. Its route class opens the request's session on
first use, commits it once when the endpoint succeeded and rolls it back otherwise; services
never commit. Every POST/PUT/PATCH/DELETE route gets the Idempotency-Key guard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from zhongtai.core import idempotency
from zhongtai.core.auth.principal import Principal
from zhongtai.core.db import Database
from zhongtai.core.errors import IdempotencyKeyInFlight
from zhongtai.core.http import body_limit
from zhongtai.core.http.deps import MUTATING_METHODS, database, request_session
from zhongtai.core.http.security import client_ip, optional_principal

REPLAYED_HEADER = "Idempotent-Replayed"


async def request_body(request: Request) -> bytes:
    return await request.body()


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Makes the request safe to retry: the first response is stored and "
        "replayed for the same key and body; the same key with another body answers 422. "
        "1 to 255 visible ASCII characters (a UUID is a good choice).",
    ),
    AfterValidator(idempotency.key_shape),
]


def _scope_of(request: Request, principal: Principal | None) -> str:
    return principal.scope_key if principal else f"anonymous:{client_ip(request)}"


def _fingerprint(request: Request, body: bytes) -> str:
    # From the ASGI scope: building ``request.url`` parses a whole URL on every mutating request
    # for the same path and query (Starlette only escapes '?', '#' and '\\' in it).
    scope = request.scope
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    return idempotency.fingerprint(request.method, scope["path"], query, body)


async def idempotency_guard(
    request: Request,
    principal: Principal | None = Depends(optional_principal),
    key: IdempotencyKey = None,
) -> None:
    if key is None:
        return
    # The body is read here rather than as a dependency of its own: one dependency fewer to
    # solve on every mutating request (Starlette keeps it for the endpoint's body parameter).
    pending = idempotency.PendingKey(
        _scope_of(request, principal), key, _fingerprint(request, await request.body())
    )
    # Only a request with a key touches the database here (on a worker thread); the others
    # pass on the event loop.
    request.state.idempotency_record = await run_in_threadpool(
        idempotency.claim, request_session(request), pending.scope, pending.key, pending.fingerprint
    )


async def idempotency_at_commit_guard(request: Request, key: IdempotencyKey = None) -> None:
    """The guard of routes marked :func:`idempotent_at_commit`: checks the key and fingerprints
    the request now; the key is scoped to the caller the endpoint authenticates and bound when
    the transaction commits (:func:`_pending`). Not depending on the caller itself spares
    FastAPI a second walk of the authentication's dependencies on the busiest routes."""
    if key is not None:
        request.state.idempotency_unscoped = (key, _fingerprint(request, await request.body()))


def _pending(request: Request) -> idempotency.PendingKey | None:
    """The Idempotency-Key of an at-commit route, scoped to the caller (None: no key)."""
    pending: idempotency.PendingKey | None = getattr(request.state, "idempotency_pending", None)
    if pending is None:
        unscoped: tuple[str, str] | None = getattr(request.state, "idempotency_unscoped", None)
        if unscoped is None:
            return None
        key, print_ = unscoped
        principal: Principal | None = getattr(request.state, "principal", None)
        pending = idempotency.PendingKey(_scope_of(request, principal), key, print_)
        request.state.idempotency_pending = pending
    return pending


_AT_COMMIT = "__zhongtai_idempotent_at_commit__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def idempotent_at_commit(endpoint: Endpoint) -> Endpoint:
    """Bind this route's Idempotency-Key when its transaction commits: one statement and one
    thread hop fewer per request than claiming it first.

    Only for a route whose every effect lies in the request's transaction (nothing sent out of
    the process, no provider called): a duplicate in flight runs the endpoint too, then finds
    the key bound, rolls all of it back and replays the first response. A duplicate that
    fails (its 4xx) looks for a bound response the same way and replays it if there is one.
    """
    setattr(endpoint, _AT_COMMIT, True)
    return endpoint


@contextlib.contextmanager
def committing_refusals(
    session: Session, refusals: tuple[type[BaseException], ...]
) -> Iterator[None]:
    """Commit the request's transaction when the block raises one of ``refusals``, then let the
    refusal answer: for a refused try that was counted in the transaction that judged it
    (under the locks its racing tries wait for), so the next try sees it. Only on routes marked
    :func:`idempotent_at_commit`: no Idempotency-Key record is pending in that transaction."""
    try:
        yield
    except refusals:
        session.commit()
        raise


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {m.upper() for m in (kwargs.get("methods") or ["GET"])}
        if methods & MUTATING_METHODS:
            guard = (
                idempotency_at_commit_guard
                if getattr(endpoint, _AT_COMMIT, False)
                else idempotency_guard
            )
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or []), Depends(guard)]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        bulk_body = body_limit.declares_bulk_body(self.endpoint)

        async def handle_in_transaction(request: Request) -> Response:
            body_limit.admit(request.scope, bulk=bulk_body)  # before it waits for a slot
            if request.method in MUTATING_METHODS:
                await _received_body(request)
            async with request_slot(request):
                return await _handle_in_transaction(request)

        async def _handle_in_transaction(request: Request) -> Response:
            try:
                response = await handle(request)
                if getattr(request.state, "committed_by_endpoint", False):
                    return response  # see respond_now
            except idempotency.ReplayStoredResponse as replay:
                await _release(request)
                return _replay(replay.stored)
            except Exception:
                await _release(request)
                stored = await _bound_response(request)
                if stored is not None:
                    return _replay(stored)
                raise
            except BaseException:
                await _release(request)
                raise
            session = _session_to_end(request, response.status_code)
            if session is None:
                return response
            if response.status_code < 400 and request.method in MUTATING_METHODS:
                try:
                    await _off_loop(_commit_request, request, session, response)
                except idempotency.ReplayStoredResponse as replay:
                    return _replay(replay.stored)
            elif request.method in MUTATING_METHODS:
                await _off_loop(_close, session)
                stored = await _bound_response(request)
                if stored is not None:
                    return _replay(stored)
            else:
                # A reader holds no transaction on PostgreSQL (autocommit) and only a local one
                # on SQLite: handing the connection back costs microseconds, no thread hop.
                _close(session)
            return response

        return handle_in_transaction


async def _received_body(request: Request) -> None:
    """Take the whole body in before the request waits for a slot: a client sending it slowly
    (a till on a poor line, a large import) then holds no slot, connection or thread while its
    bytes trickle in. The endpoint reads the body kept on the request."""
    try:
        await request.body()
    except ClientDisconnect:
        # What FastAPI answers when the body cannot be read; nobody is left to read it.
        raise HTTPException(400, "The request body did not arrive in full.") from None


def request_slot(request: Request) -> asyncio.Semaphore | contextlib.nullcontext[None]:
    """At most as many requests in their endpoints as the pool has connections.

    Requests blocked on a row lock each hold a worker thread and a connection. If they could
    take every worker thread, the request holding the lock could not get one to serialise its
    answer and commit, and all would wait for timeouts. So endpoints run at most ``slots`` at
    a time and the thread pool is larger than ``slots`` (see :func:`size_thread_pool`); others
    wait on the event loop, which costs nothing.
    """
    slots: asyncio.Semaphore | None = getattr(request.app.state, "request_slots", None)
    return slots if slots is not None else contextlib.nullcontext()


def size_thread_pool(slots: int) -> None:
    """Give the endpoint thread pool room beyond the request slots (call inside the loop)."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, slots + SPARE_THREADS)


SPARE_THREADS = 16


async def _release(request: Request) -> None:
    session: Session | None = getattr(request.state, "db_session", None)
    if session is not None:
        await _off_loop(_close, session)


# Commits and closes run on threads of their own. Were they queued on the endpoint threadpool,
# requests waiting there for a pooled connection would starve the very closes that free one.
_RELEASE_THREADS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="zhongtai-uow")


async def _off_loop(fn: Callable[..., None], *args: Any) -> None:
    await asyncio.get_running_loop().run_in_executor(_RELEASE_THREADS, fn, *args)


def _close(session: Session) -> None:
    session.close()


def _replay(stored: idempotency.StoredResponse) -> Response:
    return Response(
        stored.body,
        status_code=stored.status_code,
        media_type=stored.content_type,
        headers={REPLAYED_HEADER: "true"},
    )


async def _bound_response(request: Request) -> idempotency.StoredResponse | None:
    """For a failed request of an at-commit route: the response its key is bound to, if any."""
    pending = _pending(request)
    if pending is None:
        return None
    return await asyncio.get_running_loop().run_in_executor(
        _RELEASE_THREADS, _look_up_bound, database(request), pending
    )


def _look_up_bound(
    db: Database, pending: idempotency.PendingKey
) -> idempotency.StoredResponse | None:
    with db.writer() as session:
        try:
            idempotency.replay_bound(session, pending)
        except idempotency.ReplayStoredResponse as replay:
            return replay.stored
        finally:
            session.rollback()  # a free key stays free: the request's own answer stands
    return None


def _session_to_end(request: Request, status_code: int) -> Session | None:
    """The request's session, made now if a successful request has a key to bind."""
    session: Session | None = getattr(request.state, "db_session", None)
    if session is None and status_code < 400 and _pending(request) is not None:
        session = request_session(request)  # the key is bound even if nothing else is
    return session


def _commit_request(request: Request, session: Session, response: Response) -> None:
    """Commit a successful mutating request with its Idempotency-Key record (see _commit)."""
    record = getattr(request.state, "idempotency_record", None)
    redact = getattr(request.state, "replay_redactions", ())
    subject = getattr(request.state, "replay_subject", None)
    _commit(session, record or _pending(request), response, redact, subject)


def _commit(
    session: Session,
    key: idempotency.ClaimedKey | idempotency.PendingKey | None,
    response: Response,
    redact: tuple[str, ...],
    subject: str | None = None,
) -> None:
    try:
        if key is not None:
            body = bytes(response.body)
            if redact:
                body = idempotency.redact_fields(body, redact)
            content_type = response.media_type or response.headers.get(
                "content-type", "application/json"
            )
            if isinstance(key, idempotency.ClaimedKey):
                idempotency.record_response(
                    session, key, response.status_code, content_type, body, subject
                )
            elif not idempotency.record_first_response(
                session, key, response.status_code, content_type, body, subject
            ):
                # A duplicate bound the key first: undo this one, answer with that one's.
                session.rollback()
                idempotency.replay_bound(session, key)
                session.rollback()
                raise IdempotencyKeyInFlight(
                    f"Idempotency-Key {key.key!r} was released while this request ran; retry it.",
                    headers={"Retry-After": "1"},
                )
        session.commit()
    finally:
        session.close()


def respond_now(
    request: Request, model: type[BaseModel], content: Any, status_code: int
) -> Response:
    """The answer of a busy sync endpoint, made and committed on the endpoint's own thread.

    Validates ``content`` as ``model`` (from attributes, as FastAPI validates a
    ``response_model``), serialises it, and on success of a mutating request commits the
    request's transaction with its Idempotency-Key record, as the route class would after the
    endpoint. FastAPI validates a sync endpoint's answer on a second thread and the route class
    commits on a third: this is one thread hand-off per request instead of three. The route
    keeps its ``response_model`` for the API's schema.

    A duplicate that bound the key first raises, as at the route's commit, and the route answers
    with the stored response.
    """
    body = model.model_validate(content).model_dump_json(by_alias=True).encode()
    response = Response(body, status_code=status_code, media_type="application/json")
    if status_code >= 400 or request.method not in MUTATING_METHODS:
        return response
    session = _session_to_end(request, status_code)
    if session is not None:
        request.state.db_session = None  # nothing is left for the route to close
        _commit_request(request, session, response)
    request.state.committed_by_endpoint = True
    return response


def redact_on_replay(request: Request, *fields: str) -> None:
    """Keep these top-level response fields out of the stored Idempotency-Key replay.

    For secrets shown once (a new API key): the database never holds them, and a replay
    answers the rest of the response with the field set to null.
    """
    request.state.replay_redactions = fields


def replay_concerns(request: Request, subject: str) -> None:
    """Store this request's Idempotency-Key response as concerning ``subject``
    (:func:`zhongtai.core.idempotency.subject_of`): for a response holding a person's data, which
    her erasure then forgets (:func:`zhongtai.core.idempotency.forget_responses_about`)."""
    request.state.replay_subject = subject


def api_router(**kwargs: Any) -> APIRouter:
    """The router every context's api.py uses."""
    return APIRouter(route_class=UnitOfWorkRoute, **kwargs)
