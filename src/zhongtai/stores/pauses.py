"""A store's pause of one way of taking orders: short of hands, or with its slicer down, the
manager stops taking delivery (or pickup and try-on, or parcel) orders until a moment she names,
with a reason. Sourcing passes the store by for that type meanwhile and says why (reason
``paused``); orders already taken are not touched. A pause ends by itself at its moment, or
earlier when she resumes. Both are audited and announced (``store.capability_paused``,
``store.capability_resumed``), so that channel apps and marketplace storefronts show the store
busy for that service meanwhile.

Hours and capabilities are the lasting settings; a pause is for today: at most
:data:`MAX_PAUSE` ahead.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.outbox import record_event
from zhongtai.stores.events import CapabilityPaused, CapabilityResumed
from zhongtai.stores.models import Capability, LocationCapability
from zhongtai.stores.service import get_location

MAX_PAUSE = timedelta(hours=24)
#: What a store takes orders by, and so can pause.
PAUSABLE = (Capability.DELIVERY, Capability.PICKUP, Capability.SHIP_FROM_STORE)


def pause_capability(
    session: Session,
    location_id: uuid.UUID,
    capability: Capability,
    *,
    until: datetime,
    reason: str,
    now: datetime | None = None,
) -> LocationCapability:
    """Take no orders of ``capability`` at the location until ``until`` (a pause already on is
    moved to it). 422 for a moment past or more than a day ahead, or a capability that takes no
    orders; 404 when the location lacks it."""
    now = now or utcnow()
    if capability not in PAUSABLE:
        names = ", ".join(c.value for c in PAUSABLE)
        raise InvalidInput.field("capability", f"only {names} take orders and can be paused")
    if as_utc(until) <= now:
        raise InvalidInput.field("until", "must be in the future")
    if as_utc(until) - now > MAX_PAUSE:
        raise InvalidInput.field(
            "until",
            f"at most {MAX_PAUSE.total_seconds() / 3600:.0f} hours ahead; for longer, change the "
            "store's hours or its capabilities",
        )
    row = _capability(session, location_id, capability)
    before = _pause(row, now)
    row.paused_until = until
    row.pause_reason = reason
    session.flush()
    _audit(session, "capability.paused", row, before, _pause(row, now))
    _announce(
        session,
        row,
        CapabilityPaused(
            store_id=location_id,
            capability=capability.value,
            paused_until=until,
            reason=reason,
        ),
    )
    return row


def resume_capability(
    session: Session, location_id: uuid.UUID, capability: Capability, *, now: datetime | None = None
) -> LocationCapability:
    """Take orders of ``capability`` again at once; a capability not paused stays as it is."""
    now = now or utcnow()
    row = _capability(session, location_id, capability)
    before = _pause(row, now)
    if before is None:
        return row
    row.paused_until = None
    row.pause_reason = None
    session.flush()
    _audit(session, "capability.resumed", row, before, None)
    _announce(
        session,
        row,
        CapabilityResumed(store_id=location_id, capability=capability.value, resumed_at=now),
    )
    return row


def is_paused(row: LocationCapability, now: datetime) -> bool:
    return row.paused_until is not None and as_utc(row.paused_until) > now


def _capability(
    session: Session, location_id: uuid.UUID, capability: Capability
) -> LocationCapability:
    get_location(session, location_id, lock=True)  # a pause and a resume at once take turns
    row = session.get(LocationCapability, (location_id, capability), populate_existing=True)
    if row is None:
        raise NotFound(
            f"Location {location_id} has no {capability.value} capability to pause.",
            location_id=str(location_id),
        )
    return row


def _pause(row: LocationCapability, now: datetime) -> dict[str, Any] | None:
    if not is_paused(row, now):
        return None
    assert row.paused_until is not None
    return {"until": as_utc(row.paused_until).isoformat(), "reason": row.pause_reason}


def _announce(session: Session, row: LocationCapability, event: BaseModel) -> None:
    record_event(
        session,
        event,
        aggregate_type="location",
        aggregate_id=row.location_id,
        store_id=row.location_id,
    )


def _audit(
    session: Session,
    action: str,
    row: LocationCapability,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    subject = f"{row.location_id}:{row.capability.value}"
    record_audit(session, action, "capability", subject, before, after, store_id=row.location_id)
