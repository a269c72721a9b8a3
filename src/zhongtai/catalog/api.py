"""HTTP endpoints of the catalog context."""

from __future__ import annotations

from zhongtai.core.http.routing import api_router

router = api_router()
