"""Locations are created and changed with valid coordinates, IANA zones and unique codes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.factories import Factory
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.core.pagination import PageParams
from zhongtai.stores import service
from zhongtai.stores.models import Capability, Location, LocationCapability, LocationKind


def new_store(session: Session, **overrides: Any) -> Location:
    values: dict[str, Any] = {
        "code": "SH900",
        "name": "静安寺店",
        "kind": LocationKind.STORE,
        "region": "静安",
        "city": "上海",
        "address": "南京西路 1 号",
        "latitude": 31.2235,
        "longitude": 121.4456,
        "timezone": "Asia/Shanghai",
    }
    values.update(overrides)
    return service.create_location(session, **values)


def field_of(error: InvalidInput) -> str:
    assert error.errors
    field: str = error.errors[0]["field"]
    return field


def test_a_created_location_is_active_and_can_be_read_back(session: Session) -> None:
    store = new_store(session)
    found = service.get_location(session, store.id)
    assert found.code == "SH900"
    assert found.status == "active"
    assert found.timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timezone": "China/Shanghai"}, "timezone"),
        ({"timezone": "+08:00"}, "timezone"),
        ({"latitude": 91.0}, "latitude"),
        ({"latitude": float("nan")}, "latitude"),
        ({"longitude": -181.0}, "longitude"),
    ],
)
def test_bad_coordinates_or_time_zone_are_refused_naming_the_field(
    session: Session, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        new_store(session, **overrides)
    assert field_of(caught.value) == field


def test_a_duplicate_code_is_a_conflict_and_the_session_stays_usable(session: Session) -> None:
    new_store(session)
    with pytest.raises(AlreadyExists):
        new_store(session, name="另一家")
    assert session.scalars(select(Location.name).where(Location.code == "SH900")).all() == [
        "静安寺店"
    ]


def test_changing_the_code_to_one_in_use_is_a_conflict(session: Session, factory: Factory) -> None:
    other = factory.location(code="SH901")
    store = new_store(session)
    with pytest.raises(AlreadyExists):
        service.update_location(session, store.id, code=other.code)


def test_an_update_changes_only_the_given_fields_and_checks_them(session: Session) -> None:
    store = new_store(session)
    service.update_location(session, store.id, name="静安寺旗舰店", timezone="Asia/Urumqi")
    assert (store.name, store.timezone, store.region) == ("静安寺旗舰店", "Asia/Urumqi", "静安")
    with pytest.raises(InvalidInput) as caught:
        service.update_location(session, store.id, region=None)
    assert field_of(caught.value) == "region"
    with pytest.raises(InvalidInput) as caught:
        service.update_location(session, store.id, latitude=-100.0)
    assert field_of(caught.value) == "latitude"


def test_an_unknown_location_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        service.get_location(session, Factory.new_id())


def test_listing_filters_by_kind_region_capability_and_caller_stores(
    session: Session, factory: Factory
) -> None:
    a = factory.location(region="浦东")
    b = factory.location(region="浦东")
    factory.location(region="黄浦")
    dc = factory.location(region="浦东", kind=LocationKind.DC)
    service.set_capability(session, a.id, Capability.PICKUP)
    page = PageParams(limit=50)

    def codes(**filters: Any) -> set[str]:
        rows, _ = service.list_locations(session, page, **filters)
        return {r.code for r in rows}

    assert codes(region="浦东") == {a.code, b.code, dc.code}
    assert codes(region="浦东", kind=LocationKind.STORE) == {a.code, b.code}
    assert codes(capability=Capability.PICKUP) == {a.code}
    assert codes(store_ids={b.id}) == {b.code}
    assert codes(store_ids=set()) == set()


def test_listing_pages_through_every_location_once(session: Session, factory: Factory) -> None:
    made = {factory.location(region="分页").code for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = service.list_locations(
            session, PageParams(cursor=cursor, limit=2), region="分页"
        )
        seen.extend(r.code for r in rows)
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)


def test_delivery_needs_a_positive_radius(session: Session, factory: Factory) -> None:
    store = factory.location()
    for radius in (None, 0, -5):
        with pytest.raises(InvalidInput) as caught:
            service.set_capability(session, store.id, Capability.DELIVERY, delivery_radius_m=radius)
        assert field_of(caught.value) == "delivery_radius_m"
    row = service.set_capability(session, store.id, Capability.DELIVERY, delivery_radius_m=3000)
    assert row.delivery_radius_m == 3000
    service.set_capability(session, store.id, Capability.DELIVERY, delivery_radius_m=5000)
    assert [(c.capability, c.delivery_radius_m) for c in store.capabilities] == [
        (Capability.DELIVERY, 5000)
    ]


def test_in_store_services_need_a_list_of_services(session: Session, factory: Factory) -> None:
    store = factory.location()
    with pytest.raises(InvalidInput) as caught:
        service.set_capability(session, store.id, Capability.IN_STORE_SERVICES, services=[])
    assert field_of(caught.value) == "services"
    with pytest.raises(InvalidInput):
        service.set_capability(session, store.id, Capability.PICKUP, services=["fish_cleaning"])
    row = service.set_capability(
        session,
        store.id,
        Capability.IN_STORE_SERVICES,
        services=["fish_cleaning", " alterations ", "fish_cleaning"],
    )
    assert row.services == ["fish_cleaning", "alterations"]


def test_a_removed_capability_is_gone_and_removing_it_again_is_not_found(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    service.set_capability(session, store.id, Capability.PICKUP)
    service.remove_capability(session, store.id, Capability.PICKUP)
    assert store.capabilities == []
    with pytest.raises(NotFound):
        service.remove_capability(session, store.id, Capability.PICKUP)


def test_the_database_itself_refuses_delivery_without_a_radius(
    session: Session, factory: Factory
) -> None:
    store = factory.location()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(LocationCapability(location_id=store.id, capability=Capability.DELIVERY))
