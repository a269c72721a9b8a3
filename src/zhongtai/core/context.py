"""Who and which request a change belongs to, carried in context variables for events and audit."""

from __future__ import annotations

from contextvars import ContextVar

#: The X-Request-ID of the HTTP request being served (None in jobs and the CLI).
request_id: ContextVar[str | None] = ContextVar("zhongtai_request_id", default=None)
#: "staff:<uuid>" or "api_key:<uuid>" of the authenticated caller; "system:<job>" in jobs.
actor: ContextVar[str | None] = ContextVar("zhongtai_actor", default=None)
