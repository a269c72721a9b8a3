"""The stores a checkout may ask, read from the database as the pure sourcing rules see them:
capabilities, pilot rules by category, opening hours and exceptions, stock, backlog, profile."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, update
from sqlalchemy.orm import Session

from tests.factories import APP_CALLER, Factory
from tests.inventory.conftest import StockFactory
from tests.statements import statements_on
from zhongtai.catalog.models import Sku
from zhongtai.fulfillment.location_facts import Address
from zhongtai.fulfillment.models import FulfillmentProfile
from zhongtai.fulfillment.planning import (
    PlanRequest,
    RequestedLine,
    plan_sourcing,
    store_candidates,
)
from zhongtai.fulfillment.promise import PromiseSettings, StoreCandidate
from zhongtai.inventory.rules import Line
from zhongtai.orders.checkout import QuoteRequest, quote_checkout
from zhongtai.orders.kinds import FulfillmentType, OrderStatus, SalesChannel
from zhongtai.orders.models import Order
from zhongtai.orders.placing import PlaceOrder, place_order
from zhongtai.stores import service as stores
from zhongtai.stores import service_hours
from zhongtai.stores.models import Capability, Location, LocationKind, LocationStatus, PilotScope
from zhongtai.stores.rules import WeeklySpan
from zhongtai.stores.service_pilot import upsert_pilot_rule

SQUARE = Address(31.2304, 121.4737)
NINE_TO_NINE = [WeeklySpan(d, time(9), time(21)) for d in range(7)]
# 2025-06-06 is a Friday; Shanghai is UTC+8.
FRIDAY_10_AM = datetime(2025, 6, 6, 2, 0, tzinfo=UTC)
FRIDAY = date(2025, 6, 6)


class Shop:
    """Delivery switched on chain-wide, and stores around People's Square that sell it."""

    def __init__(self, session: Session, factory: Factory) -> None:
        self.session = session
        self.stock = StockFactory(session, factory)
        upsert_pilot_rule(
            session, feature="delivery", scope=PilotScope.CHAIN, scope_value="*", enabled=True
        )

    def store(self, *, north_m: float = 0, hours: bool = True, **kw: Any) -> Location:
        store = self.stock.location(latitude=SQUARE.latitude + north_m / 111_195, **kw)
        stores.set_capability(self.session, store.id, Capability.DELIVERY, delivery_radius_m=3000)
        if hours:
            service_hours.set_weekly_hours(self.session, store.id, NINE_TO_NINE)
        self.session.commit()
        return store

    def stocked(self, store: Location, quantity: int = 10, sku: Sku | None = None) -> Sku:
        sku = sku or self.stock.sku()
        self.stock.receive(store, sku, quantity)
        return sku

    def candidates(self, *skus: Sku, now: datetime = FRIDAY_10_AM) -> list[StoreCandidate]:
        return store_candidates(self.session, delivery(*skus), now)


def delivery(*skus: Sku) -> PlanRequest:
    return PlanRequest(
        fulfillment_type=FulfillmentType.DELIVERY,
        channel="app",
        lines=[RequestedLine(s.id, 1) for s in skus],
        address=SQUARE,
    )


@pytest.fixture
def shop(session: Session, factory: Factory) -> Shop:
    return Shop(session, factory)


def test_a_store_reads_with_its_hours_capabilities_stock_and_profile(
    session: Session, shop: Shop
) -> None:
    store = shop.store()
    stores.set_capability(session, store.id, Capability.IN_STORE_SERVICES, services=["杀鱼"])
    session.add(
        FulfillmentProfile(
            location_id=store.id,
            avg_pick_seconds=90,
            pick_pack_seconds=200,
            per_line_seconds=30,
            handover_seconds=60,
            road_factor=1.2,
            rider_speed_m_per_min=300,
            service_prep_seconds={"杀鱼": 600},
        )
    )
    sku = shop.stocked(store, 7)

    (candidate,) = shop.candidates(sku)

    assert candidate.store_id == store.id and candidate.code == store.code
    assert candidate.open_now
    assert candidate.closes_at == datetime(2025, 6, 6, 13, 0, tzinfo=UTC), "21:00 in Shanghai"
    assert candidate.next_open_at == datetime(2025, 6, 7, 1, 0, tzinfo=UTC), "Saturday 9:00"
    assert candidate.fulfillment_types == frozenset({FulfillmentType.DELIVERY})
    assert candidate.delivery_radius_m == 3000
    assert candidate.services == frozenset({"杀鱼"})
    assert candidate.stock == {sku.id: 7}
    assert candidate.open_tasks == 0
    assert candidate.settings.pick_seconds_per_queued_task == 90
    assert candidate.settings.rider_speed_m_per_min == 300.0
    assert candidate.settings.service_prep_seconds["杀鱼"] == 600


def test_a_store_without_a_profile_works_at_the_default_pace(shop: Shop) -> None:
    store = shop.store()
    (candidate,) = shop.candidates(shop.stocked(store))
    assert candidate.settings == PromiseSettings()


def test_a_store_closed_today_by_an_exception_says_when_it_opens_again(
    session: Session, shop: Shop
) -> None:
    store = shop.store()
    service_hours.add_exception(session, store.id, on_date=FRIDAY, closed=True, note="盘点")
    service_hours.add_exception(
        session, store.id, on_date=FRIDAY + timedelta(days=1), opens_at=time(12), closes_at=time(14)
    )
    (candidate,) = shop.candidates(shop.stocked(store))
    assert not candidate.open_now
    assert candidate.closes_at is None
    assert candidate.next_open_at == datetime(2025, 6, 7, 4, 0, tzinfo=UTC), "Saturday 12:00"


def test_a_location_that_keeps_no_hours_is_always_open(session: Session, shop: Shop) -> None:
    store = shop.store(hours=False)
    service_hours.add_exception(session, store.id, on_date=FRIDAY, closed=True)
    (candidate,) = shop.candidates(shop.stocked(store))
    assert candidate.open_now
    assert (candidate.closes_at, candidate.next_open_at) == (None, None)


def test_a_category_rule_switches_delivery_off_for_baskets_holding_that_category_only(
    session: Session, shop: Shop
) -> None:
    store = shop.store()
    frozen = shop.stock.catalog.category()
    ice_cream = shop.stock.catalog.category(parent=frozen)
    cone = shop.stock.catalog.product(category=ice_cream).skus[0]
    shop.stocked(store, sku=cone)
    bread = shop.stocked(store)
    upsert_pilot_rule(
        session,
        feature="delivery",
        scope=PilotScope.CATEGORY,
        scope_value=str(frozen.id),
        enabled=False,
    )
    (with_cone,) = shop.candidates(bread, cone)
    (bread_only,) = shop.candidates(bread)
    assert with_cone.fulfillment_types == frozenset(), "set on the ancestor, holds for the child"
    assert bread_only.fulfillment_types == frozenset({FulfillmentType.DELIVERY})


def test_a_store_without_the_capability_is_read_but_cannot_deliver(shop: Shop) -> None:
    store = shop.stock.location()
    (candidate,) = shop.candidates(shop.stocked(store))
    assert candidate.fulfillment_types == frozenset()
    assert candidate.delivery_radius_m is None
    assert candidate.open_now, "no hours kept"


def test_far_and_closed_locations_are_not_asked_and_the_rest_come_by_code(
    session: Session, shop: Shop
) -> None:
    b = shop.store(code=f"B{Factory.new_id().hex[:6]}", north_m=500)
    a = shop.store(code=f"A{Factory.new_id().hex[:6]}", north_m=-500)
    shop.store(north_m=40_000)
    shut = shop.store()
    shut.status = LocationStatus.CLOSED
    shop.store(kind=LocationKind.WAREHOUSE)
    session.commit()
    assert [c.store_id for c in shop.candidates(shop.stock.sku())] == [a.id, b.id]


def test_the_picking_backlog_counts_orders_paid_and_not_yet_picked(
    session: Session, shop: Shop
) -> None:
    store = shop.store()
    sku = shop.stocked(store)
    placed = []
    for _ in range(4):
        quote = quote_checkout(
            session,
            QuoteRequest(
                channel=SalesChannel.APP,
                fulfillment_type=FulfillmentType.DELIVERY,
                lines=[Line(sku.id, 1)],
                address=SQUARE,
            ),
            caller=APP_CALLER,
            now=FRIDAY_10_AM,
        )
        placed.append(
            place_order(session, PlaceOrder(quote.id), caller=APP_CALLER, now=FRIDAY_10_AM)
        )
    statuses = [OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.PACKED, OrderStatus.CREATED]
    for p, status in zip(placed, statuses, strict=True):
        session.execute(update(Order).where(Order.id == p.order.id).values(status=status))
    (candidate,) = shop.candidates(sku)
    assert candidate.open_tasks == 2, "paid and picking wait for the picker; packed is done"


def test_reading_the_candidates_takes_four_statements_however_many_stores_two_once_kept(
    session: Session, connection: Connection, shop: Shop
) -> None:
    def statements(request: PlanRequest) -> int:
        session.expire_all()
        with statements_on(connection, session) as sent:
            store_candidates(session, request, FRIDAY_10_AM)
        return len(sent)

    first = shop.store()
    skus = [shop.stocked(first) for _ in range(3)]
    one_store = statements(delivery(*skus))
    for n in range(4):
        more = shop.store(north_m=100 * (n + 1))
        service_hours.add_exception(session, more.id, on_date=FRIDAY, closed=True)
        for sku in skus:
            shop.stocked(more, sku=sku)
    # Cold (new SKUs made a new reference generation): the locations, the pilot rules, the
    # stock and the opening hours; no pilot rule is set on a category, so no lineage is read.
    assert one_store == 4
    assert len(shop.candidates(*skus)) == 5  # reads them at the generation of the new stores
    # Kept at that generation: only the locations (with the generation) and the stock.
    assert statements(delivery(*skus)) == 2


def test_the_plan_delivers_from_the_open_store_and_ranks_the_closed_one_by_its_opening(
    session: Session, shop: Shop
) -> None:
    open_store = shop.store(north_m=800)
    closed = shop.store()
    service_hours.add_exception(session, closed.id, on_date=FRIDAY, closed=True)
    sku = shop.stocked(open_store)
    shop.stocked(closed, sku=sku)
    plan = plan_sourcing(session, delivery(sku), now=FRIDAY_10_AM)
    assert plan.store_id == open_store.id
    verdicts = {c["store_id"]: c for c in plan.explanation["candidates"]}
    assert verdicts[str(open_store.id)]["chosen"]
    passed_over = verdicts[str(closed.id)]
    assert (passed_over["chosen"], passed_over["rank"]) == (False, 2)
    assert "next opening at 2025-06-07 01:00 UTC" in passed_over["explanation"]
