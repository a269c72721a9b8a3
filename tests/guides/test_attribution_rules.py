"""Specification of the attribution rule: who is credited with each line of a sale, and why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.guides.attribution_rules import (
    AttributionPolicy,
    AttributionReason,
    BoundGuide,
    GuideStanding,
    Sale,
    SaleLine,
    ShareTouch,
    attribute_sale,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HOME = uuid.UUID(int=1)
OTHER_STORE = uuid.UUID(int=2)
ALICE, BETTY, CAROL = (uuid.UUID(int=100 + i) for i in range(3))
SKU_A, SKU_B = uuid.UUID(int=500), uuid.UUID(int=501)
GUIDES = {g: GuideStanding(g, HOME, active=True) for g in (ALICE, BETTY, CAROL)}


def sale(**kw: object) -> Sale:
    values: dict[str, object] = {
        "order_id": uuid.uuid4(),
        "online": True,
        "store_id": HOME,
        "placed_at": NOW,
        "lines": (SaleLine(uuid.UUID(int=900), SKU_A), SaleLine(uuid.UUID(int=901), SKU_B)),
    }
    values.update(kw)
    return Sale(**values)  # type: ignore[arg-type]


def touch(guide: uuid.UUID, days_ago: float, sku: uuid.UUID | None = None) -> ShareTouch:
    return ShareTouch(uuid.uuid4(), guide, NOW - timedelta(days=days_ago), sku)


def test_selling_guide_is_credited_with_every_line_even_against_a_share_link() -> None:
    credits = attribute_sale(
        sale(selling_guide_id=ALICE, bound_guide=BoundGuide(CAROL, uuid.uuid4())),
        [touch(BETTY, 1)],
        GUIDES,
    )
    assert {c.guide_id for c in credits} == {ALICE}
    assert {c.reason for c in credits} == {AttributionReason.SELLING_GUIDE}


def test_share_link_within_the_window_credits_its_guide_over_the_bound_guide() -> None:
    link = touch(BETTY, 6.9)
    credits = attribute_sale(sale(bound_guide=BoundGuide(CAROL, uuid.uuid4())), [link], GUIDES)
    assert [c.guide_id for c in credits] == [BETTY, BETTY]
    assert credits[0].reason is AttributionReason.SHARE_LINK
    assert credits[0].ref == str(link.link_id)


def test_share_link_older_than_the_window_falls_back_to_the_bound_guide() -> None:
    binding = uuid.uuid4()
    credits = attribute_sale(
        sale(bound_guide=BoundGuide(CAROL, binding)), [touch(BETTY, 8)], GUIDES
    )
    assert [c.reason for c in credits] == [AttributionReason.BOUND_GUIDE] * 2
    assert credits[0].ref == str(binding)


def test_share_link_opened_after_the_order_credits_nothing() -> None:
    credits = attribute_sale(sale(), [touch(BETTY, -0.1)], GUIDES)
    assert [c.guide_id for c in credits] == [None, None]


def test_each_line_goes_to_the_guide_who_shared_that_product() -> None:
    credits = attribute_sale(sale(), [touch(ALICE, 3, SKU_A), touch(BETTY, 1, SKU_B)], GUIDES)
    assert [c.guide_id for c in credits] == [ALICE, BETTY]


def test_latest_generic_link_wins_for_lines_nobody_shared() -> None:
    credits = attribute_sale(
        sale(), [touch(ALICE, 3, SKU_A), touch(BETTY, 2), touch(CAROL, 4)], GUIDES
    )
    assert [c.guide_id for c in credits] == [ALICE, BETTY]


def test_share_links_do_not_credit_till_sales() -> None:
    credits = attribute_sale(sale(online=False), [touch(BETTY, 1)], GUIDES)
    assert [c.guide_id for c in credits] == [None, None]


def test_bound_guide_earns_online_only_when_the_chain_says_so() -> None:
    bound = BoundGuide(CAROL, uuid.uuid4())
    off = AttributionPolicy(bound_guide_earns_online=False)
    assert attribute_sale(sale(bound_guide=bound), [], GUIDES, off)[0].guide_id is None
    assert attribute_sale(sale(bound_guide=bound), [], GUIDES)[0].guide_id == CAROL


def test_bound_guide_earns_in_another_store_only_when_the_chain_says_so() -> None:
    bound = BoundGuide(CAROL, uuid.uuid4())
    elsewhere = sale(online=False, store_id=OTHER_STORE, bound_guide=bound)
    refused = attribute_sale(elsewhere, [], GUIDES)[0]
    assert refused.guide_id is None
    assert "another store" in refused.explanation
    allowed = AttributionPolicy(bound_guide_earns_other_stores=True)
    assert attribute_sale(elsewhere, [], GUIDES, allowed)[0].guide_id == CAROL
    at_home = sale(online=False, store_id=HOME, bound_guide=bound)
    assert attribute_sale(at_home, [], GUIDES)[0].guide_id == CAROL


def test_a_guide_who_left_earns_nothing_and_the_next_rule_applies() -> None:
    guides = {**GUIDES, ALICE: GuideStanding(ALICE, HOME, active=False)}
    credits = attribute_sale(
        sale(selling_guide_id=ALICE, bound_guide=BoundGuide(ALICE, uuid.uuid4())),
        [touch(ALICE, 1), touch(BETTY, 2)],
        guides,
    )
    assert [c.guide_id for c in credits] == [BETTY, BETTY]


ids = st.sampled_from([ALICE, BETTY, CAROL, uuid.UUID(int=199)])  # 199: not a guide
skus = st.sampled_from([SKU_A, SKU_B, None])
touches = st.lists(
    st.builds(
        ShareTouch,
        link_id=st.uuids(),
        guide_id=ids,
        opened_at=st.floats(min_value=-2, max_value=20).map(lambda d: NOW - timedelta(days=d)),
        sku_id=skus,
    ),
    max_size=6,
)
sales = st.builds(
    Sale,
    order_id=st.uuids(),
    online=st.booleans(),
    store_id=st.sampled_from([HOME, OTHER_STORE]),
    placed_at=st.just(NOW),
    lines=st.lists(st.builds(SaleLine, line_id=st.uuids(), sku_id=skus), max_size=5).map(tuple),
    selling_guide_id=st.none() | ids,
    bound_guide=st.none() | st.builds(BoundGuide, guide_id=ids, binding_id=st.uuids()),
)
standings = st.fixed_dictionaries(
    {g: st.builds(GuideStanding, st.just(g), st.just(HOME), st.booleans()) for g in GUIDES}
)
policies = st.builds(
    AttributionPolicy,
    share_window=st.integers(1, 14).map(lambda d: timedelta(days=d)),
    bound_guide_earns_online=st.booleans(),
    bound_guide_earns_other_stores=st.booleans(),
)


@given(sales, touches, standings, policies)
def test_every_line_gets_exactly_one_verdict_and_only_active_guides_earn(
    s: Sale, ts: list[ShareTouch], guides: dict[uuid.UUID, GuideStanding], policy: AttributionPolicy
) -> None:
    credits = attribute_sale(s, ts, guides, policy)
    assert [c.line_id for c in credits] == [line.line_id for line in s.lines]
    for credit in credits:
        assert (credit.guide_id is None) == (credit.reason is None)
        assert credit.explanation
        if credit.guide_id is not None:
            assert guides[credit.guide_id].active


@given(sales, touches, standings, policies)
def test_share_link_credit_always_comes_from_a_link_opened_in_the_window_before_an_online_order(
    s: Sale, ts: list[ShareTouch], guides: dict[uuid.UUID, GuideStanding], policy: AttributionPolicy
) -> None:
    by_link = {str(t.link_id): t for t in ts}
    for credit in attribute_sale(s, ts, guides, policy):
        if credit.reason is AttributionReason.SHARE_LINK:
            assert s.online
            assert credit.ref is not None
            link = by_link[credit.ref]
            assert link.guide_id == credit.guide_id
            assert s.placed_at - policy.share_window <= link.opened_at <= s.placed_at


@given(sales, touches, standings, policies)
def test_an_active_selling_guide_always_wins(
    s: Sale, ts: list[ShareTouch], guides: dict[uuid.UUID, GuideStanding], policy: AttributionPolicy
) -> None:
    seller = guides.get(s.selling_guide_id) if s.selling_guide_id else None
    credits = attribute_sale(s, ts, guides, policy)
    if seller is not None and seller.active:
        assert all(c.guide_id == seller.guide_id for c in credits)
    else:
        assert all(c.reason is not AttributionReason.SELLING_GUIDE for c in credits)


@given(sales, touches, standings, policies)
def test_attribution_does_not_depend_on_the_order_touches_arrive_in(
    s: Sale, ts: list[ShareTouch], guides: dict[uuid.UUID, GuideStanding], policy: AttributionPolicy
) -> None:
    assert attribute_sale(s, ts, guides, policy) == attribute_sale(
        s, list(reversed(ts)), guides, policy
    )
