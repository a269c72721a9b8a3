"""Pilot decisions: store beats region beats chain; the nearest category rule decides."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.stores.models import PilotScope
from zhongtai.stores.rules import (
    CHAIN_SCOPE_VALUE,
    Decision,
    PilotSwitch,
    pilot_decision,
    require_capability,
)

STORE = uuid.UUID("0190a000-0000-7000-8000-000000000001")
OTHER_STORE = uuid.UUID("0190a000-0000-7000-8000-000000000002")
FRESH = uuid.UUID("0190b000-0000-7000-8000-000000000001")
FISH = uuid.UUID("0190b000-0000-7000-8000-000000000002")
SALMON = uuid.UUID("0190b000-0000-7000-8000-000000000003")
SALMON_LINEAGE = [SALMON, FISH, FRESH]


def chain(enabled: bool, feature: str = "delivery") -> PilotSwitch:
    return PilotSwitch(feature, PilotScope.CHAIN, CHAIN_SCOPE_VALUE, enabled)


def region(name: str, enabled: bool, feature: str = "delivery") -> PilotSwitch:
    return PilotSwitch(feature, PilotScope.REGION, name, enabled)


def store(store_id: uuid.UUID, enabled: bool, feature: str = "delivery") -> PilotSwitch:
    return PilotSwitch(feature, PilotScope.STORE, str(store_id), enabled)


def category(category_id: uuid.UUID, enabled: bool, feature: str = "delivery") -> PilotSwitch:
    return PilotSwitch(feature, PilotScope.CATEGORY, str(category_id), enabled)


def decide(rules: list[PilotSwitch], lineage: list[uuid.UUID] | None = None) -> Decision:
    return pilot_decision(
        rules, feature="delivery", store_id=STORE, region="浦东", category_lineage=lineage or []
    )


def test_without_rules_a_feature_is_off_and_says_so() -> None:
    decision = decide([])
    assert not decision.enabled
    assert "no pilot rule" in decision.reason


def test_a_region_pilot_turns_the_feature_on_for_its_stores_only() -> None:
    rules = [chain(False), region("浦东", True)]
    assert decide(rules) == Decision(True, "region rule turns delivery on for region 浦东")
    elsewhere = pilot_decision(rules, feature="delivery", store_id=STORE, region="黄浦")
    assert not elsewhere.enabled
    assert "chain rule" in elsewhere.reason


def test_a_store_rule_takes_one_store_out_of_its_region_pilot() -> None:
    decision = decide([region("浦东", True), store(STORE, False)])
    assert not decision.enabled
    assert decision.reason == f"store rule turns delivery off for store {STORE}"


def test_rules_of_other_features_and_stores_do_not_count() -> None:
    rules = [chain(True, "pickup"), store(OTHER_STORE, True), region("黄浦", True)]
    assert not decide(rules).enabled


def test_a_category_rule_on_an_ancestor_covers_its_descendants() -> None:
    decision = decide([chain(True), category(FRESH, False)], SALMON_LINEAGE)
    assert not decision.enabled
    assert decision.reason.startswith(
        f"category rule turns delivery off for category {SALMON} (set on its ancestor {FRESH})"
    )
    assert "chain rule turns delivery on" in decision.reason


def test_a_nearer_category_rule_overrides_the_ancestor() -> None:
    rules = [chain(True), category(FRESH, False), category(FISH, True)]
    assert decide(rules, SALMON_LINEAGE).enabled
    assert not decide(rules, [FRESH]).enabled


def test_a_category_rule_cannot_switch_on_a_store_outside_the_pilot() -> None:
    decision = decide([chain(False), category(FRESH, True)], [FRESH])
    assert not decision.enabled
    assert decision.reason.startswith("chain rule")


def test_no_category_rule_on_the_lineage_allows() -> None:
    rules = [chain(True), category(FISH, False)]
    assert decide(rules, [uuid.uuid4(), FRESH]).enabled
    assert decide(rules).enabled


def test_a_capability_the_location_lacks_is_off_whatever_the_pilot_says() -> None:
    on = Decision(True, "chain rule turns delivery on for the whole chain")
    lacking = require_capability(on, feature="delivery", has_capability=False)
    assert not lacking.enabled
    assert lacking.reason.startswith("the location does not offer delivery")
    assert require_capability(on, feature="delivery", has_capability=True) == on


# --- properties ------------------------------------------------------------------------------

REGIONS = ["浦东", "黄浦", "徐汇"]
STORES = [STORE, OTHER_STORE, uuid.UUID("0190a000-0000-7000-8000-000000000003")]
CATEGORIES = [FRESH, FISH, SALMON, uuid.UUID("0190b000-0000-7000-8000-000000000004")]

location_rules = st.lists(
    st.one_of(
        st.builds(chain, st.booleans()),
        st.builds(region, st.sampled_from(REGIONS), st.booleans()),
        st.builds(store, st.sampled_from(STORES), st.booleans()),
    ),
    unique_by=lambda r: (r.scope, r.scope_value),
)
category_rules = st.lists(
    st.builds(category, st.sampled_from(CATEGORIES), st.booleans()),
    unique_by=lambda r: r.scope_value,
)
lineages = st.lists(st.sampled_from(CATEGORIES), unique=True, max_size=4)


@given(st.sampled_from(STORES), st.sampled_from(REGIONS), lineages)
def test_with_no_rules_nothing_is_enabled(
    store_id: uuid.UUID, region_name: str, lineage: list[uuid.UUID]
) -> None:
    decision = pilot_decision(
        [], feature="delivery", store_id=store_id, region=region_name, category_lineage=lineage
    )
    assert not decision.enabled


@given(location_rules, st.sampled_from(REGIONS), st.booleans())
def test_a_store_rule_always_wins_over_region_and_chain(
    rules: list[PilotSwitch], region_name: str, enabled: bool
) -> None:
    others = [r for r in rules if r.scope is not PilotScope.STORE or r.scope_value != str(STORE)]
    decision = pilot_decision(
        [*others, store(STORE, enabled)], feature="delivery", store_id=STORE, region=region_name
    )
    assert decision.enabled is enabled
    assert decision.reason.startswith("store rule")


@given(location_rules, st.sampled_from(REGIONS))
def test_the_location_answer_comes_from_the_most_specific_rule(
    rules: list[PilotSwitch], region_name: str
) -> None:
    by_key = {(r.scope, r.scope_value): r.enabled for r in rules}
    expected = by_key.get(
        (PilotScope.STORE, str(STORE)),
        by_key.get(
            (PilotScope.REGION, region_name), by_key.get((PilotScope.CHAIN, CHAIN_SCOPE_VALUE))
        ),
    )
    decision = pilot_decision(rules, feature="delivery", store_id=STORE, region=region_name)
    assert decision.enabled is bool(expected)


@given(category_rules, lineages)
def test_the_nearest_category_rule_on_the_lineage_decides(
    rules: list[PilotSwitch], lineage: list[uuid.UUID]
) -> None:
    by_category = {r.scope_value: r.enabled for r in rules}
    nearest = next((by_category[str(c)] for c in lineage if str(c) in by_category), True)
    decision = decide([chain(True), *rules], lineage)
    assert decision.enabled is nearest


@given(location_rules, category_rules, lineages)
def test_enabled_means_location_on_and_category_allowing(
    loc_rules: list[PilotSwitch], cat_rules: list[PilotSwitch], lineage: list[uuid.UUID]
) -> None:
    location_only = decide(loc_rules)
    category_only = decide([chain(True), *cat_rules], lineage)
    combined = decide([*loc_rules, *cat_rules], lineage)
    assert combined.enabled is (location_only.enabled and category_only.enabled)
