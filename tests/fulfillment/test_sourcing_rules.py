"""Sourcing: which store fulfils a basket, why every other candidate does not, and ship splits."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhongtai.core.errors import InvalidInput
from zhongtai.fulfillment.rules import (
    BasketLine,
    GeoPoint,
    PromiseSettings,
    Reason,
    SourcingDecision,
    SourcingRequest,
    StoreCandidate,
    choose_stores,
)
from zhongtai.orders.kinds import FulfillmentType as F
from zhongtai.orders.kinds import LineKind

NOW = datetime(2024, 6, 5, 10, 0, tzinfo=UTC)
HOME = GeoPoint(31.2304, 121.4737)  # People's Square
# Roughly 111 m per 0.001 degree of latitude: stores placed due north of the customer.
NORTH_1KM = 0.009
SALMON, MILK, EGGS = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
CLEANING = BasketLine(uuid.UUID(int=9), 1, LineKind.SERVICE, "fish_cleaning")
ALL_TYPES = frozenset(F)


def store(code: str, km_north: float = 1.0, **changes: object) -> StoreCandidate:
    fields: dict[str, object] = {
        "store_id": uuid.uuid5(uuid.NAMESPACE_DNS, code),
        "code": code,
        "latitude": HOME.latitude + km_north * NORTH_1KM,
        "longitude": HOME.longitude,
        "fulfillment_types": ALL_TYPES,
        "delivery_radius_m": 3_000,
        "services": frozenset({"fish_cleaning"}),
        "stock": {SALMON: 10, MILK: 10, EGGS: 10},
    }
    fields.update(changes)
    return StoreCandidate(**fields)  # type: ignore[arg-type]


def basket(*lines: tuple[uuid.UUID, int]) -> list[BasketLine]:
    return [BasketLine(sku, qty) for sku, qty in lines]


def delivery(lines: list[BasketLine], **kw: object) -> SourcingRequest:
    return SourcingRequest(F.DELIVERY, lines, address=HOME, **kw)  # type: ignore[arg-type]


def verdict_of(decision: SourcingDecision, code: str) -> tuple[bool, tuple[str, ...], str]:
    found = next(v for v in decision.verdicts if v.code == code)
    return found.eligible, tuple(found.reasons), found.explanation


def test_the_quickest_store_that_covers_the_basket_delivers_and_others_are_explained() -> None:
    candidates = [
        store("NEAR", 1.0, open_tasks=0),
        store("BUSY", 0.5, open_tasks=20),
        store("FAR", 8.0),
        store("JUSTOUT", 3.2),
        store("EMPTY", 0.3, stock={SALMON: 1}),
        store("NOFISH", 0.4, services=frozenset()),
        store("PICKUPONLY", 0.2, fulfillment_types=frozenset({F.PICKUP})),
        store("SHUT", 0.6, open_now=False),
    ]
    decision = choose_stores(delivery([*basket((SALMON, 2), (MILK, 1)), CLEANING]), candidates, NOW)

    assert decision.found and not decision.split
    assert decision.assignments[0].code == "NEAR"
    assert decision.assignments[0].quantities == {SALMON: 2, MILK: 1}
    assert decision.assignments[0].services == {"fish_cleaning"}
    assert decision.within_target
    assert decision.promise is not None and decision.promise.minutes <= 30
    assert len(decision.verdicts) == len(candidates)
    assert verdict_of(decision, "FAR")[:2] == (False, (Reason.OUTSIDE_RADIUS,))
    assert "8.0 km away, beyond its 3.0 km radius" in verdict_of(decision, "FAR")[2]
    assert verdict_of(decision, "JUSTOUT")[:2] == (False, (Reason.OUTSIDE_RADIUS,))
    assert verdict_of(decision, "EMPTY")[:2] == (False, (Reason.MISSING_STOCK,))
    assert verdict_of(decision, "NOFISH")[:2] == (False, (Reason.MISSING_SERVICE,))
    assert "fish_cleaning" in verdict_of(decision, "NOFISH")[2]
    assert verdict_of(decision, "PICKUPONLY")[:2] == (False, (Reason.TYPE_NOT_ENABLED,))
    assert verdict_of(decision, "SHUT")[:2] == (False, (Reason.CLOSED,))
    busy = next(v for v in decision.verdicts if v.code == "BUSY")
    assert busy.eligible and busy.rank == 2 and not busy.chosen
    assert "ranked 2 of 2" in busy.explanation


def test_a_store_with_several_problems_names_all_of_them() -> None:
    lacking = store("LACKING", 0.5, services=frozenset(), stock={})
    decision = choose_stores(delivery([*basket((SALMON, 1)), CLEANING]), [lacking], NOW)
    assert not decision.found
    assert verdict_of(decision, "LACKING")[1] == (Reason.MISSING_SERVICE, Reason.MISSING_STOCK)
    assert "missing_stock" in decision.summary and "missing_service" in decision.summary


def test_reason_codes_are_stable_strings() -> None:
    assert {r.value for r in Reason} == {
        "not_chosen_store",
        "type_not_enabled",
        "outside_radius",
        "missing_service",
        "missing_stock",
        "closed",
        "paused",
    }


def test_a_store_paused_for_the_type_is_passed_by_until_its_pause_ends() -> None:
    paused = store("PAUSED", 0.5, paused_until=NOW + timedelta(minutes=45))
    candidates = [paused, store("NEXT", 0.9)]
    decision = choose_stores(delivery(basket((SALMON, 1))), candidates, NOW)
    assert [a.code for a in decision.assignments] == ["NEXT"]
    eligible, reasons, explanation = verdict_of(decision, "PAUSED")
    assert not eligible and reasons == ("paused",)
    assert "paused by the store until" in explanation
    later = choose_stores(delivery(basket((SALMON, 1))), candidates, NOW + timedelta(hours=1))
    assert [a.code for a in later.assignments] == ["PAUSED"]


def test_delivery_is_never_split_across_two_half_stocked_stores() -> None:
    halves = [store("A", 0.5, stock={SALMON: 5}), store("B", 0.6, stock={MILK: 5})]
    decision = choose_stores(delivery(basket((SALMON, 1), (MILK, 1))), halves, NOW)
    assert not decision.found
    assert not decision.within_target
    assert decision.promise is None
    assert all(v.reasons == (Reason.MISSING_STOCK,) for v in decision.verdicts)
    assert decision.summary.startswith("No location can fulfil")


def test_when_no_store_meets_the_target_the_best_promise_is_offered_as_late() -> None:
    swamped = [store("S1", 1.0, open_tasks=30), store("S2", 2.0, open_tasks=25)]
    decision = choose_stores(delivery(basket((SALMON, 1))), swamped, NOW)
    assert decision.found
    assert decision.assignments[0].code == "S2"
    assert decision.promise is not None and decision.promise.minutes > 30
    assert not decision.within_target
    assert "no location meets the 30-minute target" in decision.summary


def test_a_closed_store_with_a_next_opening_offers_a_slot_not_a_rejection() -> None:
    tomorrow = NOW + timedelta(hours=20)
    decision = choose_stores(
        delivery(basket((SALMON, 1))), [store("NIGHT", open_now=False, next_open_at=tomorrow)], NOW
    )
    assert decision.found
    assert decision.promise is not None and decision.promise.slot
    assert decision.promise.starts_at == tomorrow
    assert not decision.within_target
    assert "slot" in decision.summary


def test_an_open_store_beats_a_slot_from_a_nearer_closed_one() -> None:
    candidates = [
        store("CLOSED", 0.2, open_now=False, next_open_at=NOW + timedelta(hours=1)),
        store("OPEN", 2.5),
    ]
    decision = choose_stores(delivery(basket((SALMON, 1))), candidates, NOW)
    assert decision.assignments[0].code == "OPEN"


def test_equal_minutes_go_to_the_nearer_store_then_the_smaller_backlog_then_the_code() -> None:
    # Zero-cost settings: every store promises the same whole minute, so the tie-breaks decide.
    instant = PromiseSettings(
        pick_seconds_per_queued_task=0,
        pick_pack_seconds_per_order=60,
        pick_pack_seconds_per_line=0,
        road_factor=0.0001,
    )
    pickup = SourcingRequest(F.PICKUP, basket((SALMON, 1)), address=HOME)
    near_far = [store("FAR", 2.0, settings=instant), store("NEAR", 1.0, settings=instant)]
    assert choose_stores(pickup, near_far, NOW).assignments[0].code == "NEAR"
    backlog = [
        store("BUSY", 1.0, open_tasks=5, settings=instant),
        store("IDLE", 1.0, open_tasks=1, settings=instant),
    ]
    assert choose_stores(pickup, backlog, NOW).assignments[0].code == "IDLE"
    twins = [store("B", 1.0, settings=instant), store("A", 1.0, settings=instant)]
    assert choose_stores(pickup, twins, NOW).assignments[0].code == "A"


def test_the_customers_chosen_pickup_store_is_the_only_eligible_one() -> None:
    mine = store("MINE", 5.0, open_tasks=10)
    decision = choose_stores(
        SourcingRequest(
            F.PICKUP, basket((SALMON, 1)), address=HOME, preferred_store_id=mine.store_id
        ),
        [store("QUICKER", 0.5), mine],
        NOW,
    )
    assert decision.assignments[0].code == "MINE"
    assert verdict_of(decision, "QUICKER")[:2] == (False, (Reason.NOT_CHOSEN_STORE,))
    assert decision.target_minutes is None and decision.within_target


def test_a_chosen_store_that_lacks_stock_leaves_the_order_unsourced() -> None:
    mine = store("MINE", stock={})
    decision = choose_stores(
        SourcingRequest(F.RESERVE_TRY, basket((SALMON, 1)), preferred_store_id=mine.store_id),
        [store("OTHER"), mine],
        NOW,
    )
    assert not decision.found
    assert verdict_of(decision, "MINE")[1] == (Reason.MISSING_STOCK,)


def test_pickup_ignores_the_delivery_radius() -> None:
    far = store("FAR", 30.0)
    decision = choose_stores(
        SourcingRequest(F.PICKUP, basket((SALMON, 1)), address=HOME), [far], NOW
    )
    assert decision.found


def test_two_lines_of_the_same_sku_need_their_sum_in_stock() -> None:
    five = store("FIVE", stock={SALMON: 5})
    decision = choose_stores(delivery(basket((SALMON, 3), (SALMON, 3))), [five], NOW)
    assert verdict_of(decision, "FIVE")[1] == (Reason.MISSING_STOCK,)


def test_a_target_can_be_tightened_per_request() -> None:
    decision = choose_stores(delivery(basket((SALMON, 1)), target_minutes=5), [store("A")], NOW)
    assert decision.found and not decision.within_target
    assert decision.target_minutes == 5


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (SourcingRequest(F.DELIVERY, basket((SALMON, 1))), "address"),
        (SourcingRequest(F.PICKUP, []), "lines"),
        (SourcingRequest(F.PICKUP, basket((SALMON, 0))), "lines[0].quantity"),
        (SourcingRequest(F.PICKUP, [BasketLine(SALMON, 1, LineKind.SERVICE)]), "lines[0].service"),
        (SourcingRequest(F.PICKUP, basket((SALMON, 1)), target_minutes=0), "target_minutes"),
    ],
)
def test_an_impossible_request_is_refused_naming_the_field(
    request_: SourcingRequest, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        choose_stores(request_, [store("A")], NOW)
    assert caught.value.errors == [{"field": field, "message": caught.value.errors[0]["message"]}]


# --- ship ------------------------------------------------------------------------------------


def ship(*lines: tuple[uuid.UUID, int]) -> SourcingRequest:
    return SourcingRequest(F.SHIP, basket(*lines), address=HOME)


def shipped(decision: SourcingDecision) -> Counter[uuid.UUID]:
    total: Counter[uuid.UUID] = Counter()
    for part in decision.assignments:
        total.update(part.quantities)
    return total


def test_a_parcel_from_one_location_beats_a_quicker_split() -> None:
    candidates = [
        store("HALF1", 0.5, stock={SALMON: 5}),
        store("HALF2", 0.6, stock={MILK: 5}),
        store("DC", 40.0, open_tasks=40, stock={SALMON: 99, MILK: 99}),
    ]
    decision = choose_stores(ship((SALMON, 2), (MILK, 2)), candidates, NOW)
    assert [a.code for a in decision.assignments] == ["DC"]


def test_a_parcel_no_location_holds_whole_is_split_line_by_line() -> None:
    candidates = [
        store("A", 0.5, stock={SALMON: 5}),
        store("B", 0.6, stock={MILK: 5}),
        store("C", 0.7, stock={EGGS: 1}),
    ]
    decision = choose_stores(ship((SALMON, 2), (MILK, 3)), candidates, NOW)
    assert decision.split
    parts = {a.code: dict(a.quantities) for a in decision.assignments}
    assert parts == {"A": {SALMON: 2}, "B": {MILK: 3}}
    assert verdict_of(decision, "C")[1] == (Reason.MISSING_STOCK,)
    assert decision.promise == max(
        (a.promise for a in decision.assignments), key=lambda p: p.deliver_by
    )


def test_a_line_no_location_holds_in_full_is_split_drawing_on_chosen_locations_first() -> None:
    candidates = [
        store("A", 0.5, stock={SALMON: 3, MILK: 2}),
        store("B", 0.6, stock={SALMON: 2}),
        store("C", 0.7, stock={SALMON: 4}),
    ]
    decision = choose_stores(ship((SALMON, 7), (MILK, 2)), candidates, NOW)
    parts = {a.code: dict(a.quantities) for a in decision.assignments}
    assert parts == {"A": {SALMON: 3, MILK: 2}, "C": {SALMON: 4}}
    assert shipped(decision) == {SALMON: 7, MILK: 2}


def test_a_parcel_beyond_the_whole_chains_stock_is_not_sourced() -> None:
    candidates = [store("A", stock={SALMON: 3}), store("B", stock={SALMON: 3})]
    decision = choose_stores(ship((SALMON, 7)), candidates, NOW)
    assert not decision.found and not decision.within_target


def test_a_parcel_with_a_service_goes_partly_to_a_location_offering_it() -> None:
    candidates = [
        store("GOODS", 0.5, services=frozenset(), stock={SALMON: 5}),
        store("FISHMONGER", 0.6, stock={}),
    ]
    request = SourcingRequest(F.SHIP, [*basket((SALMON, 1)), CLEANING])
    decision = choose_stores(request, candidates, NOW)
    parts = {a.code: (dict(a.quantities), set(a.services)) for a in decision.assignments}
    assert parts == {"GOODS": ({SALMON: 1}, set()), "FISHMONGER": ({}, {"fish_cleaning"})}


# --- properties ------------------------------------------------------------------------------

SKUS = [uuid.UUID(int=n) for n in range(1, 6)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[SourcingRequest, list[StoreCandidate]]:
    ftype = draw(st.sampled_from(list(F)))
    lines = draw(
        st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 6)), min_size=1, max_size=5)
    )
    request_lines = basket(*lines)
    if draw(st.booleans()):
        request_lines.append(CLEANING)
    candidates = []
    for n in range(draw(st.integers(0, 8))):
        candidates.append(
            store(
                f"S{n}",
                draw(st.floats(-6, 6)),
                fulfillment_types=draw(
                    st.just(ALL_TYPES) | st.frozensets(st.sampled_from(list(F)))
                ),
                delivery_radius_m=draw(st.none() | st.integers(500, 6_000)),
                services=frozenset(draw(st.sets(st.just("fish_cleaning")))),
                stock={sku: draw(st.integers(0, 8)) for sku in SKUS},
                open_tasks=draw(st.integers(0, 15)),
                open_now=draw(st.booleans()),
                next_open_at=draw(st.none() | st.just(NOW + timedelta(hours=9))),
                paused_until=draw(
                    st.none()
                    | st.sampled_from([NOW - timedelta(minutes=1), NOW + timedelta(hours=1)])
                ),
            )
        )
    target = draw(st.none() | st.integers(1, 60))
    request = SourcingRequest(ftype, request_lines, address=HOME, target_minutes=target)
    return request, candidates


def _need(request: SourcingRequest) -> Counter[uuid.UUID]:
    need: Counter[uuid.UUID] = Counter()
    for line in request.lines:
        if line.kind is LineKind.GOODS:
            need[line.sku_id] += line.quantity
    return need


@settings(max_examples=300)
@given(scenarios())
def test_a_chosen_store_has_the_type_unpaused_the_radius_the_services_and_the_whole_basket(
    scenario: tuple[SourcingRequest, list[StoreCandidate]],
) -> None:
    request, candidates = scenario
    decision = choose_stores(request, candidates, NOW)
    by_id = {c.store_id: c for c in candidates}
    need = _need(request)
    services = {line.service for line in request.lines if line.service}
    for part in decision.assignments:
        chosen = by_id[part.store_id]
        assert request.fulfillment_type in chosen.fulfillment_types
        assert chosen.paused_until is None or chosen.paused_until <= NOW
        assert all(chosen.stock.get(sku, 0) >= qty for sku, qty in part.quantities.items())
        assert part.services <= chosen.services
        if request.fulfillment_type is F.DELIVERY:
            assert chosen.delivery_radius_m is not None
            assert part.distance_m is not None and part.distance_m <= chosen.delivery_radius_m
    if decision.found:
        assert shipped(decision) == need
        assert {s for part in decision.assignments for s in part.services} == services
        if request.fulfillment_type is not F.SHIP:
            assert len(decision.assignments) == 1


@settings(max_examples=300)
@given(scenarios())
def test_no_eligible_candidate_lacks_the_type_the_radius_the_services_or_the_stock(
    scenario: tuple[SourcingRequest, list[StoreCandidate]],
) -> None:
    request, candidates = scenario
    decision = choose_stores(request, candidates, NOW)
    by_id = {c.store_id: c for c in candidates}
    need = _need(request)
    services = {line.service for line in request.lines if line.service}
    for verdict in decision.verdicts:
        if not verdict.eligible:
            continue
        candidate = by_id[verdict.store_id]
        assert request.fulfillment_type in candidate.fulfillment_types
        assert candidate.paused_until is None or candidate.paused_until <= NOW
        if request.fulfillment_type is F.DELIVERY:
            assert candidate.delivery_radius_m is not None and verdict.distance_m is not None
            assert verdict.distance_m <= candidate.delivery_radius_m
        if request.fulfillment_type is not F.SHIP:
            assert all(candidate.stock.get(sku, 0) >= qty for sku, qty in need.items())
            assert services <= candidate.services


@settings(max_examples=300)
@given(scenarios())
def test_within_target_means_the_promise_is_within_the_target(
    scenario: tuple[SourcingRequest, list[StoreCandidate]],
) -> None:
    request, candidates = scenario
    decision = choose_stores(request, candidates, NOW)
    if decision.within_target:
        assert decision.promise is not None
        assert request.target is None or decision.promise.minutes <= request.target
    if not decision.found:
        assert not decision.within_target


@settings(max_examples=200)
@given(scenarios(), st.randoms(use_true_random=False))
def test_every_candidate_gets_one_verdict_and_the_order_of_candidates_does_not_matter(
    scenario: tuple[SourcingRequest, list[StoreCandidate]], rng: random.Random
) -> None:
    request, candidates = scenario
    decision = choose_stores(request, candidates, NOW)
    shuffled = candidates[:]
    rng.shuffle(shuffled)
    again = choose_stores(request, shuffled, NOW)
    assert again == decision
    assert sorted(v.code for v in decision.verdicts) == sorted(c.code for c in candidates)
    ranks = [v.rank for v in decision.verdicts if v.eligible]
    assert ranks == list(range(1, len(ranks) + 1))
    for verdict in decision.verdicts:
        assert verdict.eligible == (not verdict.reasons)
        assert verdict.eligible == (verdict.promise is not None)
        assert verdict.explanation.startswith(verdict.code)
    if decision.found and request.fulfillment_type is not F.SHIP:
        best = next(v for v in decision.verdicts if v.eligible)
        assert best.chosen and best.store_id == decision.store_id
