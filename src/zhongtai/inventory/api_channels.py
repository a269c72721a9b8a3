"""HTTP endpoints of channel allocation, ATP per channel, and where a basket can be had."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, status
from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.errors import Forbidden, InvalidInput
from zhongtai.core.http.deps import db_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.http.security import require
from zhongtai.inventory import allocation, availability
from zhongtai.inventory.models import ChannelAllocation
from zhongtai.inventory.rules import Line
from zhongtai.inventory.schemas import AllocationIn, AllocationOut, ChannelAtpOut, StoreOfferOut

router = api_router(tags=["inventory: channels"])
READ = Depends(require(Permission.INVENTORY_READ))
ADJUST = Depends(require(Permission.INVENTORY_ADJUST))


def caller_channel(principal: Principal, asked: str | None) -> str | None:
    """A key sells for its own channel; staff may ask for any (or none: the whole ATP)."""
    return principal.channel.value if principal.channel is not None else asked


def _ensure_may_set(principal: Principal, location_id: uuid.UUID | None) -> None:
    if location_id is None and not principal.chain_wide:
        raise Forbidden("A rule for every store needs a chain-wide caller.")
    if location_id is not None:
        principal.ensure_store(location_id)


@router.get("/inventory/allocations", response_model=list[AllocationOut])
def list_allocations(
    channel: str | None = Query(None, max_length=48),
    _: Principal = READ,
    session: Session = Depends(db_session),
) -> list[AllocationOut]:
    """Every channel allocation rule, by channel then store."""
    return [AllocationOut.model_validate(r) for r in allocation.list_allocations(session, channel)]


@router.put("/inventory/allocations", response_model=AllocationOut)
def put_allocation(
    body: AllocationIn, principal: Principal = ADJUST, session: Session = Depends(db_session)
) -> AllocationOut:
    """Set what a channel may sell in a store (or in every store without a rule of its own)."""
    _ensure_may_set(principal, body.location_id)
    rule = allocation.set_allocation(
        session,
        body.channel,
        body.location_id,
        share_percent=body.share_percent,
        keep_units=body.keep_units,
    )
    return AllocationOut.model_validate(rule)


@router.delete("/inventory/allocations/{allocation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_allocation(
    allocation_id: uuid.UUID, principal: Principal = ADJUST, session: Session = Depends(db_session)
) -> None:
    rule = session.get(ChannelAllocation, allocation_id)
    if rule is not None:
        _ensure_may_set(principal, rule.location_id)
    allocation.remove_allocation(session, allocation_id)


@router.get("/inventory/locations/{location_id}/channel-atp", response_model=list[ChannelAtpOut])
def channel_atp(
    location_id: uuid.UUID,
    sku_id: list[uuid.UUID] = Query(..., min_length=1, max_length=200),
    channel: str | None = Query(None, description="Staff only; a key answers for its channel."),
    principal: Principal = READ,
    session: Session = Depends(db_session),
) -> list[ChannelAtpOut]:
    """The store's ATP of each SKU and what the channel may still sell of it."""
    principal.ensure_store(location_id)
    chosen = caller_channel(principal, channel)
    if chosen is None:
        raise InvalidInput.field("channel", "is required for staff: the channel to answer for")
    figures = allocation.channel_balances(session, chosen, location_id, sku_id)
    return [ChannelAtpOut(sku_id=s, atp=a, channel_atp=c) for s, (a, c) in figures.items()]


def _items(items: list[str]) -> list[Line]:
    lines = []
    for i, item in enumerate(items):
        sku, _, quantity = item.partition(":")
        try:
            lines.append(Line(uuid.UUID(sku), int(quantity)))
        except ValueError:
            raise InvalidInput.field(
                f"item.{i}", "must be SKU_ID:QUANTITY, e.g. 0193...:2"
            ) from None
    return lines


@router.get("/inventory/availability", response_model=list[StoreOfferOut])
def where_to_get(
    latitude: float = Query(ge=-90, le=90),
    longitude: float = Query(ge=-180, le=180),
    item: list[str] = Query(..., min_length=1, max_length=200, description="SKU_ID:QUANTITY"),
    pickup_within_m: int = Query(availability.DEFAULT_PICKUP_WITHIN_M, ge=0, le=50_000),
    channel: str | None = Query(None, description="Staff only; a key answers for its channel."),
    principal: Principal = READ,
    session: Session = Depends(db_session),
) -> list[StoreOfferOut]:
    """Stores, nearest first, that deliver to this point or offer pickup near it and have
    the whole basket within the channel's allocation."""
    offers = availability.stores_with_basket(
        session,
        latitude,
        longitude,
        _items(item),
        channel=caller_channel(principal, channel),
        pickup_within_m=pickup_within_m,
    )
    return [StoreOfferOut.model_validate(o) for o in offers]
