"""Exception handlers that answer every error as RFC 9457 application/problem+json."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhongtai.core.errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE, DomainError
from zhongtai.core.http.body_limit import RequestBodyTooLarge
from zhongtai.core.logging import get_logger

log = get_logger("zhongtai.errors")


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=body["status"], headers=headers, media_type=PROBLEM_CONTENT_TYPE
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        source, rest = parts[0], parts[1:]
        return ".".join(rest) if source == "body" and rest else ".".join(parts)
    return ".".join(parts)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = err.get("loc", ())
        item: dict[str, Any] = {
            "field": _field_path(loc) or "body",
            "in": loc[0] if loc else "body",
            "message": err.get("msg", "invalid"),
            "code": err.get("type", "invalid"),
        }
        ctx = err.get("ctx")
        if ctx:
            item["expected"] = {k: str(v) for k, v in ctx.items() if k != "error"}
        out.append(item)
    return out


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(exc.to_problem(request.url.path), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    body = {
        "type": PROBLEM_BASE + "validation-error",
        "title": "The request is not valid",
        "status": 422,
        "detail": summary or "The request body or parameters are not valid.",
        "instance": request.url.path,
        "errors": errors,
    }
    return problem_response(body)


async def _body_too_large(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestBodyTooLarge)
    return problem_response(exc.to_problem(request.url.path), dict(exc.headers or {}))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    slug = {404: "not-found", 405: "method-not-allowed"}.get(status, f"http-{status}")
    body = {
        "type": PROBLEM_BASE + slug,
        "title": phrase,
        "status": status,
        "detail": str(exc.detail) if exc.detail else phrase,
        "instance": request.url.path,
    }
    return problem_response(body, getattr(exc, "headers", None))


#: SQLSTATEs of a transaction the database gave up on for a reason of the moment: serialization
#: failure, deadlock, a lock not granted in time. Retrying the request is the remedy.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
RETRY_AFTER_SECONDS = "1"


def is_transient(exc: DBAPIError) -> bool:
    """True for a conflict between transactions that a retry resolves (never for a bug)."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in TRANSIENT_SQLSTATES
    return "database is locked" in str(exc.orig)  # SQLite's busy timeout ran out


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After for a transient conflict (the request's transaction was rolled back
    and its Idempotency-Key left free, so retrying it is safe); anything else is a bug (500)."""
    assert isinstance(exc, DBAPIError)
    if not is_transient(exc):
        return await _unexpected_error(request, exc)
    log.warning(
        "transient_database_conflict",
        path=request.url.path,
        error=type(exc.orig).__name__,
        detail=str(exc.orig).splitlines()[0] if str(exc.orig) else "",
    )
    body = {
        "type": PROBLEM_BASE + "database-busy",
        "title": "The database could not complete the request just now",
        "status": 503,
        "detail": "The request ran into a concurrent one and was rolled back; nothing of it was "
        "kept. Retry it (with the same Idempotency-Key).",
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    return problem_response(body, {"Retry-After": RETRY_AFTER_SECONDS})


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
    body = {
        "type": PROBLEM_BASE + "internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred; it has been logged with the request id.",
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    return problem_response(body)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestBodyTooLarge, _body_too_large)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
