"""Authentication of a request (who) and the permission and store checks of an endpoint (what)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zhongtai.core import context
from zhongtai.core.auth import service as auth
from zhongtai.core.auth import throttle
from zhongtai.core.auth.credentials import API_KEY_PREFIX, split_api_key
from zhongtai.core.auth.key_cache import VerifiedKeyCache
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import Unauthenticated
from zhongtai.core.http.deps import app_settings, database, request_session

_bearer = HTTPBearer(
    auto_error=False,
    description="Staff access token from /auth/login, or a channel API key (ztk_...).",
)
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Channel API key (ztk_...)."
)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def optional_principal(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    api_key: str | None = Depends(_api_key_header),
) -> Principal | None:
    """The caller, None when no credentials were sent; 401 for credentials that do not hold.

    A recently verified API key is answered from memory (see ``key_cache``); everything else
    goes to the database on a worker thread.
    """
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    value = api_key or (bearer.credentials if bearer else None)
    if value is None:
        return None
    material = split_api_key(value)
    principal: Principal | None = None
    if material is not None:
        principal = key_cache(request).get(material)
        if principal is None:
            principal = await run_in_threadpool(_authenticate_key, request, value)
            key_cache(request).put(material, principal)
    elif value.startswith(API_KEY_PREFIX):
        principal = await run_in_threadpool(_authenticate_key, request, value)
    else:
        principal = await run_in_threadpool(_authenticate_token, request, value)
    request.state.principal = principal
    context.actor.set(principal.scope_key)
    return principal


def key_cache(request: Request) -> VerifiedKeyCache:
    cache: VerifiedKeyCache = request.app.state.api_key_cache
    return cache


def _authenticate_key(request: Request, value: str) -> Principal:
    session = request_session(request)
    principal = auth.principal_for_api_key(session, value)
    if principal is None:
        settings = app_settings(request)
        _refuse(
            request,
            session,
            kind="api_key",
            subject=value[:16],
            max_per_subject=settings.api_key_max_failures_per_ip,
            max_per_ip=settings.api_key_max_failures_per_ip,
            window=timedelta(seconds=settings.login_failure_window_seconds),
        )
    assert principal is not None
    return principal


def _authenticate_token(request: Request, value: str) -> Principal:
    settings = app_settings(request)
    principal = auth.principal_for_token(
        request_session(request), settings.secret_key.get_secret_value(), value
    )
    if principal is None:
        raise Unauthenticated("The access token is invalid, expired or revoked; log in again.")
    return principal


def _refuse(
    request: Request,
    session: Session,
    *,
    kind: str,
    subject: str,
    max_per_subject: int,
    max_per_ip: int,
    window: timedelta,
) -> None:
    ip = client_ip(request)
    # End the request's transaction first: on SQLite a writer's lock would block the record.
    # The record is committed before the count is read, so the k-th refusal to commit reads at
    # least k and no more than the limit answer 401, whatever the concurrency (the request's own
    # session may only read: a GET's). A valid key never comes here: its path reads no count.
    session.rollback()
    throttle.record_failure(
        database(request).writer,
        kind=kind,
        subject=subject,
        client_ip=ip,
        reason="unknown_or_revoked",
    )
    throttle.ensure_not_throttled(
        session,
        kind=kind,
        subject=None,
        client_ip=ip,
        max_per_subject=max_per_subject,
        max_per_ip=max_per_ip,
        window=window,
    )
    raise Unauthenticated("The API key is unknown or revoked.")


def _authenticated(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("Send a staff access token or a channel API key.")
    return principal


async def current_principal(principal: Principal | None = Depends(optional_principal)) -> Principal:
    return _authenticated(principal)


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the authenticated caller, who must hold ``permission`` (else 403).

    It depends on :func:`optional_principal` directly, not through :func:`current_principal`:
    every protected request solves one dependency fewer.
    """

    async def dependency(principal: Principal | None = Depends(optional_principal)) -> Principal:
        checked = _authenticated(principal)
        checked.require(permission)
        return checked

    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency
