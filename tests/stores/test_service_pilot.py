"""Pilot rules are upserted against real targets, and is_enabled explains its answer."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.stores.conftest import MakeCategory
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.pagination import PageParams
from zhongtai.stores import service, service_pilot
from zhongtai.stores.models import Capability, LocationStatus, PilotRule, PilotScope


def test_upserting_the_same_rule_twice_changes_it_in_place(
    session: Session, factory: Factory
) -> None:
    factory.location(region="浦东")
    first = service_pilot.upsert_pilot_rule(
        session, feature="delivery", scope=PilotScope.REGION, scope_value="浦东", enabled=True
    )
    second = service_pilot.upsert_pilot_rule(
        session,
        feature="delivery",
        scope=PilotScope.REGION,
        scope_value="浦东",
        enabled=False,
        note="paused",
    )
    assert second.id == first.id
    assert (second.enabled, second.note) == (False, "paused")
    count = session.scalar(select(func.count()).select_from(PilotRule))
    assert count == 1


def test_the_chain_scope_value_is_always_a_star(session: Session) -> None:
    rule = service_pilot.upsert_pilot_rule(
        session, feature="guide_commission", scope=PilotScope.CHAIN, scope_value=None, enabled=True
    )
    assert rule.scope_value == "*"
    with pytest.raises(InvalidInput):
        service_pilot.upsert_pilot_rule(
            session, feature="delivery", scope=PilotScope.CHAIN, scope_value="all", enabled=True
        )


@pytest.mark.parametrize(
    ("scope", "value"),
    [
        (PilotScope.STORE, "not-a-uuid"),
        (PilotScope.STORE, "0190a000-0000-7000-8000-00000000dead"),
        (PilotScope.CATEGORY, "0190a000-0000-7000-8000-00000000dead"),
        (PilotScope.REGION, "月球"),
        (PilotScope.REGION, None),
    ],
)
def test_a_rule_must_point_at_something_that_exists(
    session: Session, scope: PilotScope, value: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        service_pilot.upsert_pilot_rule(
            session, feature="delivery", scope=scope, scope_value=value, enabled=True
        )
    assert caught.value.errors is not None
    assert caught.value.errors[0]["field"] == "scope_value"


def test_a_feature_name_is_a_lowercase_key(session: Session) -> None:
    with pytest.raises(InvalidInput) as caught:
        service_pilot.upsert_pilot_rule(
            session, feature="Delivery!", scope=PilotScope.CHAIN, scope_value="*", enabled=True
        )
    assert caught.value.errors is not None
    assert caught.value.errors[0]["field"] == "feature"


def test_store_ids_are_stored_in_canonical_form(session: Session, factory: Factory) -> None:
    store = factory.location()
    rule = service_pilot.upsert_pilot_rule(
        session,
        feature="delivery",
        scope=PilotScope.STORE,
        scope_value=str(store.id).upper(),
        enabled=True,
    )
    assert rule.scope_value == str(store.id)


def test_a_deleted_rule_no_longer_decides(session: Session, factory: Factory) -> None:
    store = factory.location()
    rule = service_pilot.upsert_pilot_rule(
        session, feature="self_checkout", scope=PilotScope.CHAIN, scope_value="*", enabled=True
    )
    assert service_pilot.is_enabled(session, "self_checkout", store.id).enabled
    service_pilot.delete_pilot_rule(session, rule.id)
    assert not service_pilot.is_enabled(session, "self_checkout", store.id).enabled
    with pytest.raises(NotFound):
        service_pilot.delete_pilot_rule(session, rule.id)


def test_listing_rules_filters_by_feature(session: Session) -> None:
    for feature in ("delivery", "pickup", "delivery.express"):
        service_pilot.upsert_pilot_rule(
            session, feature=feature, scope=PilotScope.CHAIN, scope_value="*", enabled=True
        )
    rows, cursor = service_pilot.list_pilot_rules(session, PageParams(), feature="delivery")
    assert [r.feature for r in rows] == ["delivery"]
    assert cursor is None


def test_a_region_pilot_with_one_store_held_back(session: Session, factory: Factory) -> None:
    pilot, held_back = factory.location(region="浦东"), factory.location(region="浦东")
    outside = factory.location(region="黄浦")
    for store in (pilot, held_back, outside):
        service.set_capability(session, store.id, Capability.DELIVERY, delivery_radius_m=3000)
    service_pilot.upsert_pilot_rule(
        session, feature="delivery", scope=PilotScope.REGION, scope_value="浦东", enabled=True
    )
    service_pilot.upsert_pilot_rule(
        session,
        feature="delivery",
        scope=PilotScope.STORE,
        scope_value=str(held_back.id),
        enabled=False,
    )
    on = service_pilot.is_enabled(session, "delivery", pilot.id)
    off = service_pilot.is_enabled(session, "delivery", held_back.id)
    assert on.enabled and on.reason == "region rule turns delivery on for region 浦东"
    assert not off.enabled and off.reason.startswith("store rule turns delivery off")
    assert not service_pilot.is_enabled(session, "delivery", outside.id).enabled
    assert service_pilot.stores_with(session, "delivery") == [pilot.id]


def test_a_capability_needs_the_store_to_offer_it(session: Session, factory: Factory) -> None:
    store = factory.location()
    service_pilot.upsert_pilot_rule(
        session, feature="pickup", scope=PilotScope.CHAIN, scope_value="*", enabled=True
    )
    decision = service_pilot.is_enabled(session, "pickup", store.id)
    assert not decision.enabled
    assert decision.reason.startswith("the location does not offer pickup")
    assert service_pilot.stores_with(session, "pickup") == []
    service.set_capability(session, store.id, Capability.PICKUP)
    assert service_pilot.is_enabled(session, "pickup", store.id).enabled
    assert service_pilot.stores_with(session, "pickup") == [store.id]


def test_a_closed_store_has_nothing_enabled(session: Session, factory: Factory) -> None:
    store = factory.location()
    service_pilot.upsert_pilot_rule(
        session, feature="guide_commission", scope=PilotScope.CHAIN, scope_value="*", enabled=True
    )
    service.update_location(session, store.id, status=LocationStatus.CLOSED)
    decision = service_pilot.is_enabled(session, "guide_commission", store.id)
    assert not decision.enabled
    assert "closed" in decision.reason
    assert store.id not in service_pilot.stores_with(session, "guide_commission")


def test_a_category_rule_applies_to_its_descendants_unless_a_nearer_one_overrides(
    session: Session, factory: Factory, make_category: MakeCategory
) -> None:
    store = factory.location()
    service.set_capability(session, store.id, Capability.DELIVERY, delivery_radius_m=3000)
    fresh = make_category("生鲜")
    fish = make_category("水产", fresh)
    salmon = make_category("三文鱼", fish)
    frozen = make_category("冷冻", fresh)
    for scope, value, enabled in [
        (PilotScope.CHAIN, "*", True),
        (PilotScope.CATEGORY, str(fresh.id), False),
        (PilotScope.CATEGORY, str(fish.id), True),
    ]:
        service_pilot.upsert_pilot_rule(
            session, feature="delivery", scope=scope, scope_value=value, enabled=enabled
        )

    def enabled_for(category_id: uuid.UUID | None) -> bool:
        return service_pilot.is_enabled(session, "delivery", store.id, category_id).enabled

    assert enabled_for(None)
    assert not enabled_for(fresh.id)
    assert not enabled_for(frozen.id)
    assert enabled_for(fish.id)
    assert enabled_for(salmon.id)
    reason = service_pilot.is_enabled(session, "delivery", store.id, frozen.id).reason
    assert f"set on its ancestor {fresh.id}" in reason
    assert service_pilot.stores_with(session, "delivery", frozen.id) == []
    assert service_pilot.stores_with(session, "delivery", salmon.id) == [store.id]


def test_checking_an_unknown_store_or_category_is_not_found(
    session: Session, factory: Factory
) -> None:
    with pytest.raises(NotFound):
        service_pilot.is_enabled(session, "delivery", Factory.new_id())
    with pytest.raises(NotFound):
        service_pilot.is_enabled(session, "delivery", factory.location().id, Factory.new_id())
