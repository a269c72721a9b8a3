"""HTTP endpoint of the audit log: HQ reads who changed what, filtered, page by page."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from zhongtai.core.audit import list_audit_entries
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import InvalidInput
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.core.pagination import Page, PageParams, page_params

router = api_router(tags=["audit"])


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    actor: str | None
    request_id: str | None
    action: str
    subject_type: str
    subject_id: str
    store_id: uuid.UUID | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.get("/audit", response_model=Page[AuditEntryOut])
def list_audit(
    action: str | None = Query(None, description="e.g. price_override.created"),
    subject_type: str | None = Query(None, description="e.g. api_key"),
    subject_id: str | None = Query(None),
    actor: str | None = Query(None, description="staff:<uuid> or api_key:<uuid>"),
    store_id: uuid.UUID | None = Query(None),
    since: datetime | None = Query(None, description="From this instant (inclusive)."),
    until: datetime | None = Query(None, description="Before this instant."),
    principal: Principal = Depends(require(Permission.AUDIT_READ)),
    page: PageParams = Depends(page_params),
    session: Session = Depends(db_session),
) -> Page[AuditEntryOut]:
    """Sensitive changes, oldest first: who (staff or key), what, before and after, when,
    and the X-Request-ID of the request that made them. A store manager reads those about her
    stores (stock corrections, prices, hours, guides, keys of the store), not the chain's."""
    if store_id is not None:
        principal.ensure_store(store_id)
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput.field(
                name, "must carry a UTC offset, e.g. 2026-11-25T08:00:00+08:00"
            )
    rows, cursor = list_audit_entries(
        session,
        page,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        actor=actor,
        store_id=store_id,
        since=since,
        until=until,
        within=principal.store_ids,
    )
    return Page(items=[AuditEntryOut.model_validate(r) for r in rows], next_cursor=cursor)
