"""Channel allocation (what each channel may sell) and where a basket can be had for an address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from tests.inventory.conftest import StockFactory, line
from zhongtai.core.errors import InvalidInput
from zhongtai.inventory import allocation, availability, service
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability, Location

TTL = timedelta(minutes=10)
# People's Square, Shanghai; stores placed north of it at known distances.
HOME = (31.2304, 121.4737)
METRE_OF_LATITUDE = 1 / 111_195


def _store_at(
    stock: StockFactory, metres_north: int, *caps: Capability, radius: int = 3000
) -> Location:
    store = stock.location(latitude=HOME[0] + metres_north * METRE_OF_LATITUDE, longitude=HOME[1])
    for cap in caps:
        stores.set_capability(
            stock.session,
            store.id,
            cap,
            delivery_radius_m=radius if cap is Capability.DELIVERY else None,
        )
    stock.session.commit()
    return store


def test_online_gets_80_percent_less_2_kept_for_walk_ins_and_reserving_respects_it(
    session: Session, stock: StockFactory
) -> None:
    store, sku = stock.location(), stock.sku()
    stock.receive(store, sku, 10)
    allocation.set_allocation(session, "app", None, share_percent=80, keep_units=2)
    assert allocation.channel_balances(session, "app", store.id, [sku.id]) == {sku.id: (10, 8)}
    with pytest.raises(InsufficientStock) as short:
        service.reserve(session, "app-1", store.id, [line(sku, 9)], TTL, channel="app")
    assert short.value.extra["available"] == 8
    service.reserve(session, "app-2", store.id, [line(sku, 6)], TTL, channel="app")
    # 4 left in the store: 80% is 3, but 2 stay for walk-ins, so the app may take 2 more.
    assert allocation.channel_balances(session, "app", store.id, [sku.id]) == {sku.id: (4, 2)}
    service.reserve(session, "pos-1", store.id, [line(sku, 4)], TTL, channel="pos")
    assert service.verify_stock(session) == []


def test_a_marketplace_may_sell_only_from_the_stores_it_is_allowed(
    session: Session, stock: StockFactory
) -> None:
    allowed, other, sku = stock.location(), stock.location(), stock.sku()
    stock.receive(allowed, sku, 5)
    stock.receive(other, sku, 5)
    allocation.set_allocation(session, "marketplace:eleme", None, share_percent=0, keep_units=0)
    rule = allocation.set_allocation(
        session, "marketplace:eleme", allowed.id, share_percent=100, keep_units=0
    )
    again = allocation.set_allocation(
        session, "marketplace:eleme", allowed.id, share_percent=50, keep_units=0
    )
    assert again.id == rule.id and again.share_percent == 50  # one rule per channel and store
    assert allocation.channel_balances(session, "marketplace:eleme", other.id, [sku.id]) == {
        sku.id: (5, 0)
    }
    with pytest.raises(InsufficientStock):
        service.reserve(session, "mk-1", other.id, [line(sku, 1)], TTL, channel="marketplace:eleme")
    service.reserve(session, "mk-2", allowed.id, [line(sku, 2)], TTL, channel="marketplace:eleme")
    with pytest.raises(InvalidInput) as bad:
        allocation.set_allocation(session, "Fax Machine", None, share_percent=10, keep_units=0)
    assert bad.value.errors is not None and bad.value.errors[0]["field"] == "channel"


def test_an_address_is_offered_the_stores_that_deliver_there_or_offer_pickup_with_the_whole_basket(
    session: Session, stock: StockFactory
) -> None:
    a, b = stock.sku(), stock.sku()
    near = _store_at(stock, 800, Capability.DELIVERY, Capability.PICKUP)
    pickup_only = _store_at(stock, 1500, Capability.PICKUP)
    lacks_b = _store_at(stock, 300, Capability.DELIVERY)
    too_far = _store_at(stock, 12_000, Capability.DELIVERY, Capability.PICKUP, radius=3000)
    no_service = _store_at(stock, 100)
    for store in (near, pickup_only, too_far, no_service):
        stock.receive(store, a, 5)
        stock.receive(store, b, 5)
    stock.receive(lacks_b, a, 5)
    offers = availability.stores_with_basket(session, *HOME, [line(a, 2), line(b, 5)])
    assert [(o.location_id, o.delivers, o.pickup) for o in offers] == [
        (near.id, True, True),
        (pickup_only.id, False, True),
    ]
    assert 780 <= offers[0].distance_m <= 820
    service.reserve(session, "take-b", near.id, [line(b, 1)], TTL)
    offers = availability.stores_with_basket(session, *HOME, [line(a, 2), line(b, 5)])
    assert [o.location_id for o in offers] == [pickup_only.id]


def test_an_address_search_respects_the_channel_allocation(
    session: Session, stock: StockFactory
) -> None:
    sku = stock.sku()
    store = _store_at(stock, 500, Capability.DELIVERY)
    stock.receive(store, sku, 5)
    allocation.set_allocation(session, "mini_program", store.id, share_percent=100, keep_units=2)
    for channel, found in ((None, True), ("app", True), ("mini_program", False)):
        offers = availability.stores_with_basket(session, *HOME, [line(sku, 4)], channel=channel)
        assert (store.id in [o.location_id for o in offers]) is found, channel


def test_tonnes_of_weighed_stock_do_not_overflow_the_share_arithmetic(
    session: Session, stock: StockFactory
) -> None:
    """50 t of rice counted in grams, times a 100% share, is beyond a 32-bit integer."""
    sku = stock.sku()
    store = _store_at(stock, 400, Capability.DELIVERY)
    stock.receive(store, sku, 50_000_000)
    allocation.set_allocation(session, "app", store.id, share_percent=80, keep_units=0)
    offers = availability.stores_with_basket(session, *HOME, [line(sku, 30_000_000)])
    assert [o.location_id for o in offers] == [store.id]
    offers = availability.stores_with_basket(session, *HOME, [line(sku, 30_000_000)], channel="app")
    assert [o.location_id for o in offers] == [store.id]
    service.reserve(session, "bulk-rice", store.id, [line(sku, 30_000_000)], TTL, channel="app")
    # 20 t left, 80% of it (16 t) for the app: 17 t is refused.
    with pytest.raises(InsufficientStock):
        service.reserve(session, "more-rice", store.id, [line(sku, 17_000_000)], TTL, channel="app")
