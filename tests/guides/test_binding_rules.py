"""Guide binding rules: one guide per member, first or last touch, protection, managers decide."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.guides.binding_rules import (
    DIRECTED_SOURCES,
    BindingDecision,
    BindingReason,
    BindingRule,
    BindingSource,
    BindingVerdict,
    CurrentBinding,
    Touch,
    binding_after,
    decide_binding,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PROTECTION = timedelta(days=30)
LI, WANG, ZHAO = (uuid.UUID(int=n) for n in (1, 2, 3))  # three guides
ORDINARY_SOURCES = [s for s in BindingSource if s not in DIRECTED_SOURCES]


def bound_to(
    guide: uuid.UUID, *, days_ago: int = 10, protected_days: int = 30, active: bool = True
) -> CurrentBinding:
    bound_at = T0 - timedelta(days=days_ago)
    return CurrentBinding(guide, bound_at, bound_at + timedelta(days=protected_days), active)


def touch(
    guide: uuid.UUID, source: BindingSource = BindingSource.SHARE_LINK, at: datetime = T0
) -> Touch:
    return Touch(guide_id=guide, source=source, at=at)


# --- examples --------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", list(BindingRule))
def test_an_unbound_member_is_bound_to_the_first_guide_who_touches_her(rule: BindingRule) -> None:
    decision = decide_binding(None, touch(LI), rule, PROTECTION)
    assert decision == BindingDecision(BindingVerdict.BIND, "unbound", T0 + PROTECTION)


def test_a_touch_by_her_own_guide_keeps_her_and_renews_the_protection() -> None:
    decision = decide_binding(
        bound_to(LI, days_ago=20), touch(LI), BindingRule.LAST_TOUCH, PROTECTION
    )
    assert decision == BindingDecision(BindingVerdict.KEEP, "same_guide", T0 + PROTECTION)


def test_renewing_never_shortens_a_longer_protection() -> None:
    current = bound_to(LI, days_ago=1, protected_days=90)
    decision = decide_binding(current, touch(LI), BindingRule.LAST_TOUCH, PROTECTION)
    assert (decision.verdict, decision.protected_until) == (
        BindingVerdict.KEEP,
        current.protected_until,
    )


def test_under_first_touch_another_guide_is_refused_even_long_after_the_protection() -> None:
    current = bound_to(LI, days_ago=400)
    decision = decide_binding(current, touch(WANG), BindingRule.FIRST_TOUCH, PROTECTION)
    assert decision == BindingDecision(BindingVerdict.REFUSE, "first_touch_keeps", None)


def test_under_last_touch_another_guide_is_refused_inside_the_protection() -> None:
    current = bound_to(LI, days_ago=10, protected_days=30)
    decision = decide_binding(current, touch(WANG), BindingRule.LAST_TOUCH, PROTECTION)
    assert decision == BindingDecision(BindingVerdict.REFUSE, "protected_until", None)


def test_under_last_touch_another_guide_takes_over_from_the_moment_protection_ends() -> None:
    current = bound_to(LI, days_ago=30, protected_days=30)
    assert current.protected_until == T0
    decision = decide_binding(current, touch(WANG), BindingRule.LAST_TOUCH, PROTECTION)
    assert decision == BindingDecision(BindingVerdict.REBIND, "protection_over", T0 + PROTECTION)
    a_second_before = touch(WANG, at=T0 - timedelta(seconds=1))
    assert (
        decide_binding(current, a_second_before, BindingRule.LAST_TOUCH, PROTECTION).verdict
        is BindingVerdict.REFUSE
    )


@pytest.mark.parametrize("rule", list(BindingRule))
def test_a_guide_who_has_left_never_blocks_another(rule: BindingRule) -> None:
    current = bound_to(LI, days_ago=1, active=False)
    decision = decide_binding(current, touch(WANG, BindingSource.WECOM), rule, PROTECTION)
    assert decision == BindingDecision(BindingVerdict.REBIND, "current_guide_left", T0 + PROTECTION)


@pytest.mark.parametrize("rule", list(BindingRule))
@pytest.mark.parametrize(
    ("source", "reason"),
    [(BindingSource.MANAGER, "manager_override"), (BindingSource.HANDOVER, "handover")],
)
def test_a_manager_reassignment_or_a_handover_rebinds_inside_the_protection(
    rule: BindingRule, source: BindingSource, reason: str
) -> None:
    current = bound_to(LI, days_ago=1)
    decision = decide_binding(current, touch(WANG, source), rule, PROTECTION)
    assert decision == BindingDecision(BindingVerdict.REBIND, reason, T0 + PROTECTION)


@pytest.mark.parametrize("source", list(BindingSource))
def test_a_touch_older_than_the_binding_never_rebinds(source: BindingSource) -> None:
    current = bound_to(LI, days_ago=1, active=False)
    late_event = touch(WANG, source, at=current.bound_at - timedelta(minutes=5))
    decision = decide_binding(current, late_event, BindingRule.LAST_TOUCH, PROTECTION)
    assert decision == BindingDecision(BindingVerdict.REFUSE, "older_than_binding", None)


def test_reasons_are_the_stable_codes() -> None:
    assert {r.value for r in BindingReason} == {
        "unbound",
        "same_guide",
        "older_than_binding",
        "manager_override",
        "handover",
        "current_guide_left",
        "first_touch_keeps",
        "protected_until",
        "protection_over",
    }


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 1, 9, 0)  # naive on purpose
    with pytest.raises(ValueError, match=r"touch\.at"):
        decide_binding(None, touch(LI, at=naive), BindingRule.LAST_TOUCH, PROTECTION)
    current = CurrentBinding(LI, naive, T0, guide_active=True)
    with pytest.raises(ValueError, match="bound_at"):
        decide_binding(current, touch(WANG), BindingRule.LAST_TOUCH, PROTECTION)


def test_times_in_another_zone_compare_as_the_same_instants() -> None:
    shanghai = timezone(timedelta(hours=8))
    current = bound_to(LI, days_ago=30, protected_days=30)
    same_instant = touch(WANG, at=T0.astimezone(shanghai))
    decision = decide_binding(current, same_instant, BindingRule.LAST_TOUCH, PROTECTION)
    assert decision.verdict is BindingVerdict.REBIND


def test_a_negative_protection_is_refused() -> None:
    with pytest.raises(ValueError, match="protection"):
        decide_binding(None, touch(LI), BindingRule.LAST_TOUCH, -PROTECTION)


def test_applying_a_decision_moves_the_member_to_the_guide_it_names() -> None:
    current = bound_to(LI, days_ago=40)
    wang = touch(WANG)
    decision = decide_binding(current, wang, BindingRule.LAST_TOUCH, PROTECTION)
    assert binding_after(current, wang, decision) == CurrentBinding(
        WANG, T0, T0 + PROTECTION, guide_active=True
    )
    refused = decide_binding(current, wang, BindingRule.FIRST_TOUCH, PROTECTION)
    assert binding_after(current, wang, refused) is current


def test_a_decision_applied_to_another_state_than_it_was_made_for_is_refused() -> None:
    bind = decide_binding(None, touch(LI), BindingRule.LAST_TOUCH, PROTECTION)
    with pytest.raises(ValueError, match="rebound"):
        binding_after(bound_to(WANG), touch(LI), bind)
    keep = decide_binding(bound_to(LI), touch(LI), BindingRule.LAST_TOUCH, PROTECTION)
    with pytest.raises(ValueError, match="own guide"):
        binding_after(bound_to(WANG), touch(LI), keep)


# --- properties over sequences of touches ------------------------------------------------------

guides = st.sampled_from([LI, WANG, ZHAO])


def touches(sources: list[BindingSource]) -> st.SearchStrategy[Touch]:
    # Minutes either side of T0: events arrive out of order as often as in order.
    return st.builds(
        Touch,
        guide_id=guides,
        source=st.sampled_from(sources),
        at=st.integers(-60 * 24 * 90, 60 * 24 * 90).map(lambda m: T0 + timedelta(minutes=m)),
    )


protections = st.integers(0, 60 * 24 * 60).map(lambda m: timedelta(minutes=m))


@given(
    st.lists(touches(list(BindingSource)), max_size=25),
    st.sampled_from(list(BindingRule)),
    protections,
)
def test_a_member_is_always_bound_to_exactly_one_guide_once_touched(
    sequence: list[Touch], rule: BindingRule, protection: timedelta
) -> None:
    current: CurrentBinding | None = None
    for t in sequence:
        decision = decide_binding(current, t, rule, protection)
        after = binding_after(current, t, decision)
        assert after is not None
        if current is None:
            assert decision.verdict is BindingVerdict.BIND
            assert after.guide_id == t.guide_id
        elif decision.verdict in (BindingVerdict.KEEP, BindingVerdict.REFUSE):
            assert after.guide_id == current.guide_id
            assert after.bound_at == current.bound_at
        else:
            assert decision.verdict is BindingVerdict.REBIND
            assert current.guide_id != t.guide_id == after.guide_id
            assert t.at >= current.bound_at
        if decision.verdict is BindingVerdict.KEEP:
            assert current is not None
            assert after.protected_until >= current.protected_until
        current = after


@given(
    guides,
    st.lists(touches(ORDINARY_SOURCES), max_size=25),
    protections,
)
def test_under_first_touch_the_first_guide_keeps_her_through_any_ordinary_touches(
    first: uuid.UUID, sequence: list[Touch], protection: timedelta
) -> None:
    opening = touch(first, BindingSource.IN_STORE_SALE)
    current = binding_after(
        None, opening, decide_binding(None, opening, BindingRule.FIRST_TOUCH, protection)
    )
    for t in sequence:
        decision = decide_binding(current, t, BindingRule.FIRST_TOUCH, protection)
        assert decision.verdict in (BindingVerdict.KEEP, BindingVerdict.REFUSE)
        current = binding_after(current, t, decision)
        assert current is not None
        assert current.guide_id == first


@given(
    st.builds(
        CurrentBinding,
        guide_id=guides,
        bound_at=st.integers(-1_000, 0).map(lambda m: T0 + timedelta(minutes=m)),
        protected_until=st.integers(0, 10_000).map(lambda m: T0 + timedelta(minutes=m)),
        guide_active=st.just(True),
    ),
    touches(ORDINARY_SOURCES),
    protections,
)
def test_under_last_touch_no_ordinary_touch_rebinds_inside_the_protection(
    current: CurrentBinding, t: Touch, protection: timedelta
) -> None:
    decision = decide_binding(current, t, BindingRule.LAST_TOUCH, protection)
    if t.at < current.protected_until:
        assert decision.verdict is not BindingVerdict.REBIND
    elif t.guide_id != current.guide_id and t.at >= current.bound_at:
        assert decision.verdict is BindingVerdict.REBIND
