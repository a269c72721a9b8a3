"""Where a basket can be had: the stores that deliver to an address or offer pickup near it
and hold every line within the channel's allocation, in one query."""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Float, Integer, Select, and_, bindparam, case, cast, func, select
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


def _metres_per_lng_degree(latitude: float) -> float:
    return METRES_PER_DEGREE * max(0.01, math.cos(math.radians(latitude)))


def _allocation_columns() -> tuple[Any, Any, list[Any]]:
    """share_percent and keep_units per store for the channel (its own rule, else chain-wide)."""
    own = aliased(ChannelAllocation)
    chain = aliased(ChannelAllocation)
    channel = bindparam("channel", type_=ChannelAllocation.__table__.c.channel.type)
    joins = [
        (own, and_(own.channel == channel, own.location_id == Location.id)),
        (chain, and_(chain.channel == channel, chain.location_id.is_(None))),
    ]
    share = func.coalesce(own.share_percent, chain.share_percent, 100)
    keep = func.coalesce(own.keep_units, chain.keep_units, 0)
    return share, keep, joins


@functools.cache
def _stores_with_basket_query(lines: int, with_channel: bool) -> Select[Any]:
    """The statement for a basket of ``lines`` lines, built once: every call binds values.

    It first keeps the open stores whose own reach (delivery radius, or the pickup distance)
    boxes the point — a handful of the hundreds in the search box — and only then looks at
    stock: per remaining store, the basket's balance rows by primary key. Looking at stock
    first would visit a heap page per (store, SKU) of the whole search box.
    """
    number = Float()
    lat, lng = bindparam("lat", type_=number), bindparam("lng", type_=number)
    box_lat, box_lng = bindparam("box_lat", type_=number), bindparam("box_lng", type_=number)
    per_lng_degree = bindparam("metres_per_lng_degree", type_=number)
    pickup_within = bindparam("pickup_within_m", type_=Integer())
    delivery = aliased(LocationCapability)
    pickup = aliased(LocationCapability)
    if with_channel:
        share, keep, joins = _allocation_columns()
    else:
        share, keep, joins = bindparam("whole_share", 100), bindparam("nothing_kept", 0), []
    radius = func.coalesce(delivery.delivery_radius_m, 0)
    pickup_reach = case((pickup.location_id.isnot(None), pickup_within), else_=0)
    reach_m = case((radius > pickup_reach, radius), else_=pickup_reach)
    near = (
        select(
            Location.id,
            Location.code,
            Location.name,
            Location.latitude,
            Location.longitude,
            delivery.delivery_radius_m,
            pickup.location_id.isnot(None).label("has_pickup"),
            share.label("share"),
            keep.label("keep"),
        )
        .outerjoin(
            delivery,
            and_(delivery.location_id == Location.id, delivery.capability == Capability.DELIVERY),
        )
        .outerjoin(
            pickup, and_(pickup.location_id == Location.id, pickup.capability == Capability.PICKUP)
        )
    )
    for target, on in joins:
        near = near.outerjoin(target, on)
    near_stores = (
        near.where(
            Location.status == LocationStatus.ACTIVE,
            Location.latitude.between(lat - box_lat, lat + box_lat),
            Location.longitude.between(lng - box_lng, lng + box_lng),
            (delivery.location_id.isnot(None)) | (pickup.location_id.isnot(None)),
            func.abs(Location.latitude - lat) * METRES_PER_DEGREE <= reach_m,
            func.abs(Location.longitude - lng) * per_lng_degree <= reach_m,
        )
        # OFFSET 0 keeps the planner from pushing the stock check below the reach filter:
        # stock is looked at only for the few stores that can reach the point.
        .offset(0)
        .subquery("near")
    )
    sku_type = BALANCES.c.sku_id.type
    skus = [bindparam(f"sku_{n}", type_=sku_type) for n in range(lines)]
    needed = case(
        *(
            (BALANCES.c.sku_id == sku, bindparam(f"qty_{n}", type_=Integer()))
            for n, sku in enumerate(skus)
        )
    )
    available = BALANCES.c.on_hand - BALANCES.c.reserved - BALANCES.c.safety_stock
    lines_held = (
        select(func.count())
        .where(
            BALANCES.c.location_id == near_stores.c.id,
            BALANCES.c.sku_id.in_(skus),
            available >= needed,
            # 64-bit: grams of stock times a percentage overflow a 32-bit integer.
            cast(available, BigInteger) * near_stores.c.share >= cast(needed, BigInteger) * 100,
            available - near_stores.c.keep >= needed,
        )
        .scalar_subquery()
    )
    return select(
        near_stores.c.id,
        near_stores.c.code,
        near_stores.c.name,
        near_stores.c.latitude,
        near_stores.c.longitude,
        near_stores.c.delivery_radius_m,
        near_stores.c.has_pickup,
    ).where(lines_held == lines)


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
    line. One query narrows by each store's reach and checks the basket; exact distances
    follow in Python.
    """
    require_basket(lines)
    search_m = max(pickup_within_m, MAX_DELIVERY_RADIUS_M)
    per_lng_degree = _metres_per_lng_degree(latitude)
    params: dict[str, Any] = {
        "lat": latitude,
        "lng": longitude,
        "box_lat": search_m / METRES_PER_DEGREE,
        "box_lng": search_m / per_lng_degree,
        "metres_per_lng_degree": per_lng_degree,
        "pickup_within_m": pickup_within_m,
    }
    for n, line in enumerate(lines):
        params[f"sku_{n}"] = line.sku_id
        params[f"qty_{n}"] = line.quantity
    if channel is not None:
        params["channel"] = channel
    stmt = _stores_with_basket_query(len(lines), channel is not None)
    offers = []
    for location_id, code, name, lat, lng, radius, has_pickup in session.execute(stmt, params):
        distance = distance_m(latitude, longitude, lat, lng)
        delivers = radius is not None and distance <= radius
        picks = bool(has_pickup) and distance <= pickup_within_m
        if delivers or picks:
            offers.append(StoreOffer(location_id, code, name, round(distance), delivers, picks))
    return sorted(offers, key=lambda o: (o.distance_m, o.code))
