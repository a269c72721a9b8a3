"""HTTP endpoints of a store's pauses: stop taking delivery, pickup or parcel orders for a
while, and take them again."""

from __future__ import annotations

import uuid

from fastapi import Depends
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.stores import pauses
from zhongtai.stores.models import Capability
from zhongtai.stores.schemas import CapabilityOut, PauseIn

router = api_router(tags=["stores"])
#: A pause is a change of the day's trading, as opening hours and closed days are.
PAUSE = Depends(require(Permission.STORE_HOURS_WRITE))


@router.post("/stores/{store_id}/capabilities/{capability}/pause", response_model=CapabilityOut)
def pause(
    store_id: uuid.UUID,
    capability: Capability,
    body: PauseIn,
    principal: Principal = PAUSE,
    session: Session = Depends(db_session),
) -> CapabilityOut:
    """Take no orders of this capability (delivery, pickup, ship_from_store) until `until`,
    at most a day ahead, saying why: sourcing passes the store by meanwhile (reason `paused`).
    Orders already taken go on. Store managers: their own stores."""
    principal.ensure_store(store_id)
    row = pauses.pause_capability(
        session, store_id, capability, until=body.until, reason=body.reason
    )
    return CapabilityOut.model_validate(row)


@router.delete("/stores/{store_id}/capabilities/{capability}/pause", response_model=CapabilityOut)
def resume(
    store_id: uuid.UUID,
    capability: Capability,
    principal: Principal = PAUSE,
    session: Session = Depends(db_session),
) -> CapabilityOut:
    """Take orders of this capability again now (a capability not paused stays as it is)."""
    principal.ensure_store(store_id)
    return CapabilityOut.model_validate(pauses.resume_capability(session, store_id, capability))
