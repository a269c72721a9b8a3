"""Domain errors and their RFC 9457 problem+json rendering, with a stable ``type`` per error."""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://zhongtai.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class DomainError(Exception):
    """An expected failure a client can act on. Subclasses set a stable slug and HTTP status."""

    slug: ClassVar[str] = "domain-error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "The request cannot be carried out"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class InvalidInput(DomainError):
    slug = "validation-error"
    status = 422
    title = "The request is not valid"

    @classmethod
    def field(cls, field: str, message: str, *, detail: str | None = None) -> InvalidInput:
        return cls(detail or f"{field}: {message}", errors=[{"field": field, "message": message}])


class NotFound(DomainError):
    slug = "not-found"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    slug = "conflict"
    status = 409
    title = "Conflict with the current state"


class AlreadyExists(Conflict):
    slug = "already-exists"
    title = "Already exists"


class Unauthenticated(DomainError):
    slug = "unauthenticated"
    status = 401
    title = "Authentication required"

    def __init__(self, detail: str = "Missing or invalid credentials.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(DomainError):
    slug = "forbidden"
    status = 403
    title = "Not allowed"


class StoreOutOfScope(Forbidden):
    slug = "store-out-of-scope"
    title = "Store outside your scope"


class TooManyAttempts(DomainError):
    slug = "too-many-attempts"
    status = 429
    title = "Too many attempts"


class IdempotencyKeyReused(DomainError):
    slug = "idempotency-key-reused"
    status = 422
    title = "Idempotency-Key reused with a different request"


class IdempotencyKeyInFlight(DomainError):
    slug = "idempotency-key-in-flight"
    status = 409
    title = "A request with this Idempotency-Key is still being processed"
