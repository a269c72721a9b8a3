"""Where a basket can be had: the stores that deliver to an address or offer pickup near it
and hold every line within the channel's allocation, in one query."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session, aliased

from zhongtai.inventory.checks import require_basket
from zhongtai.inventory.ledger import BALANCES
from zhongtai.inventory.models import ChannelAllocation
from zhongtai.inventory.rules import Line
from zhongtai.stores.models import Capability, Location, LocationCapability, LocationStatus
from zhongtai.stores.rules import distance_m

METRES_PER_DEGREE = 111_320.0
#: How far a store's delivery radius may reach; bounds the search box.
MAX_DELIVERY_RADIUS_M = 20_000
DEFAULT_PICKUP_WITHIN_M = 5_000


@dataclass(frozen=True)
class StoreOffer:
    """A store that has the whole basket for this address: by delivery, pickup, or both."""

    location_id: uuid.UUID
    code: str
    name: str
    distance_m: int
    delivers: bool
    pickup: bool


def _box(latitude: float, longitude: float, radius_m: float) -> tuple[float, float]:
    dlat = radius_m / METRES_PER_DEGREE
    dlng = radius_m / (METRES_PER_DEGREE * max(0.01, math.cos(math.radians(latitude))))
    return dlat, dlng


def _allocation_columns(channel: str | None) -> tuple[Any, Any, list[Any]]:
    """share_percent and keep_units per store for the channel (its own rule, else chain-wide)."""
    if channel is None:
        return literal(100), literal(0), []
    own = aliased(ChannelAllocation)
    chain = aliased(ChannelAllocation)
    joins = [
        (own, and_(own.channel == channel, own.location_id == Location.id)),
        (chain, and_(chain.channel == channel, chain.location_id.is_(None))),
    ]
    share = func.coalesce(own.share_percent, chain.share_percent, 100)
    keep = func.coalesce(own.keep_units, chain.keep_units, 0)
    return share, keep, joins


def stores_with_basket(
    session: Session,
    latitude: float,
    longitude: float,
    lines: Sequence[Line],
    *,
    channel: str | None = None,
    pickup_within_m: int = DEFAULT_PICKUP_WITHIN_M,
) -> list[StoreOffer]:
    """Open stores, nearest first, that can deliver to the point (within their delivery
    radius) or offer pickup within ``pickup_within_m``, and whose channel ATP covers every
    line. One query narrows by a bounding box and checks the basket; exact distances follow.
    """
    require_basket(lines)
    dlat, dlng = _box(latitude, longitude, max(pickup_within_m, MAX_DELIVERY_RADIUS_M))
    delivery = aliased(LocationCapability)
    pickup = aliased(LocationCapability)
    share, keep, joins = _allocation_columns(channel)
    needed = case({x.sku_id: x.quantity for x in lines}, value=BALANCES.c.sku_id)
    available = BALANCES.c.on_hand - BALANCES.c.reserved - BALANCES.c.safety_stock
    stmt = (
        select(
            Location.id,
            Location.code,
            Location.name,
            Location.latitude,
            Location.longitude,
            delivery.delivery_radius_m,
            pickup.location_id.isnot(None),
        )
        .join(BALANCES, BALANCES.c.location_id == Location.id)
        .outerjoin(
            delivery,
            and_(delivery.location_id == Location.id, delivery.capability == Capability.DELIVERY),
        )
        .outerjoin(
            pickup, and_(pickup.location_id == Location.id, pickup.capability == Capability.PICKUP)
        )
    )
    for target, on in joins:
        stmt = stmt.outerjoin(target, on)
    stmt = (
        stmt.where(
            Location.status == LocationStatus.ACTIVE,
            Location.latitude.between(latitude - dlat, latitude + dlat),
            Location.longitude.between(longitude - dlng, longitude + dlng),
            (delivery.location_id.isnot(None)) | (pickup.location_id.isnot(None)),
            BALANCES.c.sku_id.in_([x.sku_id for x in lines]),
            available >= needed,
            # 64-bit: grams of stock times a percentage overflow a 32-bit integer.
            cast(available, BigInteger) * share >= cast(needed, BigInteger) * 100,
            available - keep >= needed,
        )
        .group_by(
            Location.id,
            Location.code,
            Location.name,
            Location.latitude,
            Location.longitude,
            delivery.delivery_radius_m,
            pickup.location_id,
        )
        .having(func.count() == len(lines))
    )
    offers = []
    for location_id, code, name, lat, lng, radius, has_pickup in session.execute(stmt):
        distance = distance_m(latitude, longitude, lat, lng)
        delivers = radius is not None and distance <= radius
        picks = bool(has_pickup) and distance <= pickup_within_m
        if delivers or picks:
            offers.append(StoreOffer(location_id, code, name, round(distance), delivers, picks))
    return sorted(offers, key=lambda o: (o.distance_m, o.code))
