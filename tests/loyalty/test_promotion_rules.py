"""The promotions engine and pricing with offers: what a shopper sees at the till and online."""

from __future__ import annotations

import tracemalloc
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from zhongtai.loyalty.coupon_rules import CouponKind, CouponOffer, CouponTerms
from zhongtai.loyalty.offer_pricing import price_with_offers
from zhongtai.loyalty.promotion_rules import (
    OfferContext,
    OfferLine,
    Promotion,
    PromotionKind,
    Reason,
    Scope,
    apply_promotions,
)
from zhongtai.orders.kinds import LineKind
from zhongtai.orders.pricing_rules import DeliveryFeeRule

NOW = datetime(2026, 6, 18, 10, 0, tzinfo=UTC)  # 618
STORE = uuid.UUID(int=1)
DAIRY, FRUIT, FOOD = uuid.UUID(int=10), uuid.UUID(int=11), uuid.UUID(int=12)
MILK, YOGURT, APPLE = uuid.UUID(int=100), uuid.UUID(int=101), uuid.UUID(int=102)
APP = OfferContext(channel="app", store_id=STORE, now=NOW)
GOLD = OfferContext(channel="app", store_id=STORE, now=NOW, tier="gold")


def line(sku: uuid.UUID, price: int, qty: int = 1, cat: uuid.UUID = DAIRY) -> OfferLine:
    return OfferLine(sku, (cat, FOOD), price, 1, qty)


def man_jian() -> Promotion:
    return Promotion(
        "mj",
        "满100减20 满200减50",
        PromotionKind.TIERED_AMOUNT_OFF,
        tiers=((10_000, 2_000), (20_000, 5_000)),
    )


def test_man_jian_takes_off_the_highest_tier_the_basket_reaches() -> None:
    promo = man_jian()
    assert apply_promotions([line(MILK, 9_999)], [promo], APP).discounts == ()
    assert apply_promotions([line(MILK, 15_000)], [promo], APP).discounts[0].amount == 2_000
    assert apply_promotions([line(MILK, 20_000)], [promo], APP).discounts[0].amount == 5_000
    why = apply_promotions([line(MILK, 9_999)], [promo], APP).explanations[0]
    assert why.reason is Reason.BELOW_THRESHOLD and "threshold" in why.sentence


def test_buy_two_get_one_gives_the_cheapest_unit_free() -> None:
    promo = Promotion("b2g1", "买二送一", PromotionKind.BUY_N_GET_M, buy=2, get=1)
    offers = apply_promotions([line(MILK, 1_000, 2), line(YOGURT, 600)], [promo], APP)
    assert offers.discounts[0].amount == 600
    assert sum(offers.nets) == 2_000


def test_second_item_half_price_stays_on_the_line_that_has_the_pair() -> None:
    promo = Promotion("half", "第二件半价", PromotionKind.SECOND_ITEM_PERCENT, percent=50)
    offers = apply_promotions([line(MILK, 1_000, 3), line(YOGURT, 600)], [promo], APP)
    assert [(d.amount, d.line_indexes) for d in offers.discounts] == [(500, (0,))]
    assert offers.nets == (2_500, 600)


def test_bundle_price_bundles_the_dearest_units() -> None:
    promo = Promotion(
        "any3", "任选3件99元", PromotionKind.BUNDLE_PRICE, bundle_quantity=3, bundle_price_fen=9_900
    )
    basket = [line(MILK, 4_000, 2), line(YOGURT, 3_000), line(APPLE, 1_000, cat=FRUIT)]
    assert apply_promotions(basket, [promo], APP).discounts[0].amount == 11_000 - 9_900


def test_member_price_is_for_members_of_the_named_tiers() -> None:
    promo = Promotion(
        "mp",
        "金卡会员价",
        PromotionKind.MEMBER_PRICE,
        scope=Scope(tiers=frozenset({"gold", "black"})),
        member_prices=((MILK, 800),),
    )
    basket = [line(MILK, 1_000, 2), line(YOGURT, 600)]
    assert apply_promotions(basket, [promo], GOLD).nets == (1_600, 600)
    anonymous = apply_promotions(basket, [promo], APP).explanations[0]
    assert anonymous.reason is Reason.MEMBERS_ONLY
    silver = OfferContext(channel="app", store_id=STORE, now=NOW, tier="silver")
    assert apply_promotions(basket, [promo], silver).explanations[0].reason is (
        Reason.TIER_NOT_ELIGIBLE
    )


def test_a_category_promotion_covers_subcategories_and_nothing_else() -> None:
    promo = Promotion(
        "food10", "食品9折", PromotionKind.PERCENT_OFF, percent=10,
        scope=Scope(category_ids=frozenset({FOOD})),
    )  # fmt: skip
    basket = [line(MILK, 1_000), OfferLine(None, (), 0, 1, 1, LineKind.SERVICE)]
    assert apply_promotions(basket, [promo], APP).discounts[0].line_indexes == (0,)
    fruit_only = Promotion(
        "fruit", "水果9折", PromotionKind.PERCENT_OFF, percent=10,
        scope=Scope(category_ids=frozenset({FRUIT})),
    )  # fmt: skip
    verdict = apply_promotions(basket, [fruit_only], APP).explanations[0]
    assert verdict.reason is Reason.NO_LINES_IN_SCOPE


def test_a_promotion_runs_only_in_its_window_channel_and_stores() -> None:
    basket = [line(MILK, 1_000)]
    later = Promotion(
        "l", "later", PromotionKind.AMOUNT_OFF, amount_fen=100, starts_at=NOW + timedelta(1)
    )
    over = Promotion("o", "over", PromotionKind.AMOUNT_OFF, amount_fen=100, ends_at=NOW)
    pos = Promotion(
        "p",
        "pos",
        PromotionKind.AMOUNT_OFF,
        amount_fen=100,
        scope=Scope(channels=frozenset({"pos"})),
    )
    elsewhere = Promotion(
        "s", "elsewhere", PromotionKind.AMOUNT_OFF, amount_fen=100,
        scope=Scope(store_ids=frozenset({uuid.UUID(int=2)})),
    )  # fmt: skip
    reasons = {
        e.source: e.reason
        for e in apply_promotions(basket, [later, over, pos, elsewhere], APP).explanations
    }
    assert reasons == {
        "promotion:l": Reason.NOT_STARTED,
        "promotion:o": Reason.ENDED,
        "promotion:p": Reason.OTHER_CHANNEL,
        "promotion:s": Reason.OTHER_STORE,
    }


def test_an_exclusive_promotion_of_higher_priority_keeps_its_lines_to_itself() -> None:
    exclusive = Promotion(
        "x", "牛奶特价", PromotionKind.PERCENT_OFF, percent=30, priority=10, exclusive=True,
        scope=Scope(sku_ids=frozenset({MILK})),
    )  # fmt: skip
    everything = Promotion("all", "全场95折", PromotionKind.PERCENT_OFF, percent=5)
    offers = apply_promotions(
        [line(MILK, 1_000), line(YOGURT, 1_000)], [everything, exclusive], APP
    )
    assert [(d.source, d.amount, d.line_indexes) for d in offers.discounts] == [
        ("promotion:x", 300, (0,)),
        ("promotion:all", 50, (1,)),
    ]


def test_an_exclusive_promotion_after_others_takes_only_untouched_lines() -> None:
    first = Promotion("a", "全场95折", PromotionKind.PERCENT_OFF, percent=5, priority=10)
    exclusive = Promotion("x", "独享", PromotionKind.AMOUNT_OFF, amount_fen=100, exclusive=True)
    offers = apply_promotions([line(MILK, 1_000)], [first, exclusive], APP)
    assert offers.explanations[1].reason is Reason.EXCLUSIVE_LINES_DISCOUNTED


def test_a_coupon_on_top_of_promotions_counts_its_threshold_after_them() -> None:
    coupon = CouponOffer("c1", "满100减10", CouponTerms(CouponKind.AMOUNT_OFF, 1_000, 10_000))
    priced = price_with_offers([line(MILK, 11_000)], [man_jian()], APP, coupons=[coupon])
    assert priced.basket.total == 11_000 - 2_000
    assert priced.explanations[-1].reason is Reason.BELOW_THRESHOLD
    richer = price_with_offers([line(MILK, 13_000)], [man_jian()], APP, coupons=[coupon])
    assert richer.basket.total == 13_000 - 2_000 - 1_000
    assert richer.coupons_used == ("coupon:c1",)


def test_a_coupon_that_does_not_stack_with_promotions_takes_only_undiscounted_lines() -> None:
    promo = Promotion(
        "m",
        "牛奶9折",
        PromotionKind.PERCENT_OFF,
        percent=10,
        scope=Scope(sku_ids=frozenset({MILK})),
    )
    coupon = CouponOffer(
        "c", "9折券", CouponTerms(CouponKind.PERCENT_OFF, 10), stacks_with_promotions=False
    )
    priced = price_with_offers(
        [line(MILK, 1_000), line(YOGURT, 2_000)], [promo], APP, coupons=[coupon]
    )
    assert priced.basket.lines[1].discounts[0].source == "coupon:c"
    assert [s.source for s in priced.basket.lines[0].discounts] == ["promotion:m"]


def test_only_one_coupon_unless_both_stack_and_free_delivery_waives_the_fee() -> None:
    free = CouponOffer(
        "f", "免运费", CouponTerms(CouponKind.FREE_DELIVERY, 1), stacks_with_coupons=True
    )
    off = CouponOffer("o", "减5元", CouponTerms(CouponKind.AMOUNT_OFF, 500))
    fee = DeliveryFeeRule(fee=600, free_from=None)
    priced = price_with_offers(
        [line(MILK, 3_000)], [], APP, coupons=[free, off], delivery_fee_rule=fee
    )
    assert priced.free_delivery and priced.basket.delivery_fee == 0
    assert priced.explanations[-1].reason is Reason.DOES_NOT_STACK
    assert priced.basket.total == 3_000


def test_a_fixed_price_coupon_sells_the_dearest_unit_at_its_price() -> None:
    coupon = CouponOffer("fp", "9.9元购", CouponTerms(CouponKind.FIXED_PRICE, 990))
    priced = price_with_offers([line(MILK, 1_500), line(YOGURT, 3_000)], [], APP, coupons=[coupon])
    assert priced.basket.lines[1].net == 990 and priced.basket.lines[0].net == 1_500


def test_a_gift_coupon_names_the_gift_for_the_checkout_to_add() -> None:
    gift = CouponOffer(
        "g", "满50送酸奶", CouponTerms(CouponKind.GIFT_ITEM, 1, 5_000, gift_sku_id=YOGURT)
    )
    assert price_with_offers([line(MILK, 4_000)], [], APP, coupons=[gift]).gift_sku_ids == ()
    assert price_with_offers([line(MILK, 5_000)], [], APP, coupons=[gift]).gift_sku_ids == (YOGURT,)


# --- properties ------------------------------------------------------------------------------

SKUS = [uuid.UUID(int=200 + n) for n in range(6)]
CATS = [uuid.UUID(int=300 + n) for n in range(3)]

lines_st = st.lists(
    st.builds(
        OfferLine,
        st.sampled_from(SKUS),
        st.lists(st.sampled_from(CATS), max_size=2).map(tuple),
        st.integers(0, 50_000),
        st.sampled_from([1, 1, 1, 500]),
        st.integers(1, 6),
    ),
    min_size=1,
    max_size=8,
)
scope_st = st.builds(
    Scope,
    sku_ids=st.frozensets(st.sampled_from(SKUS), max_size=2),
    category_ids=st.frozensets(st.sampled_from(CATS), max_size=1),
    tiers=st.sampled_from([frozenset(), frozenset({"gold"})]),
)
promotion_st = st.builds(
    Promotion,
    id=st.text("abcdefgh", min_size=1, max_size=4),
    name=st.just("p"),
    kind=st.sampled_from(list(PromotionKind)),
    scope=scope_st,
    priority=st.integers(0, 3),
    exclusive=st.booleans(),
    percent=st.integers(0, 100),
    amount_fen=st.integers(0, 100_000),
    threshold_fen=st.integers(0, 50_000),
    tiers=st.lists(st.tuples(st.integers(0, 60_000), st.integers(1, 30_000)), max_size=3).map(
        tuple
    ),
    buy=st.integers(0, 3),
    get=st.integers(0, 2),
    bundle_quantity=st.integers(0, 4),
    bundle_price_fen=st.integers(0, 50_000),
    member_prices=st.lists(
        st.tuples(st.sampled_from(SKUS), st.integers(0, 60_000)), max_size=3
    ).map(tuple),
    cap_fen=st.one_of(st.none(), st.integers(0, 20_000)),
)
promotions_st = st.lists(promotion_st, max_size=6, unique_by=lambda p: p.id)
context_st = st.sampled_from([APP, GOLD])


@settings(max_examples=300)
@given(lines_st, promotions_st, context_st)
def test_the_total_is_never_negative_and_every_discount_lands_on_its_lines_exactly(
    lines: list[OfferLine], promotions: list[Promotion], context: OfferContext
) -> None:
    priced = price_with_offers(lines, promotions, context)
    assert priced.basket.total >= 0
    assert all(0 <= ln.net <= ln.amount for ln in priced.basket.lines)
    by_source: dict[str, int] = defaultdict(int)
    for ln in priced.basket.lines:
        for share in ln.discounts:
            by_source[share.source] += share.amount
    explained = {e.source: e.amount for e in priced.explanations if e.applied}
    assert dict(by_source) == explained
    assert sum(explained.values()) == priced.basket.discount_total


@settings(max_examples=300)
@given(lines_st, promotions_st, context_st)
def test_no_promotion_takes_beyond_its_cap_and_exclusive_ones_share_no_line(
    lines: list[OfferLine], promotions: list[Promotion], context: OfferContext
) -> None:
    priced = price_with_offers(lines, promotions, context)
    by_id = {p.source: p for p in promotions}
    for e in priced.explanations:
        cap = by_id[e.source].cap_fen
        assert cap is None or e.amount <= cap
        promotion = by_id[e.source]
        if promotion.kind is PromotionKind.PERCENT_OFF:
            # The percentage is of every line in scope; a tiny line may get no fen of it.
            in_scope = sum(ln.amount for ln in lines if promotion.scope.covers(ln))
            assert e.amount <= in_scope * promotion.percent // 100
    for ln in priced.basket.lines:
        sources = {s.source for s in ln.discounts}
        if any(by_id[s].exclusive for s in sources):
            assert len(sources) == 1


@settings(max_examples=200)
@given(lines_st, promotions_st, context_st, st.randoms(use_true_random=False))
def test_the_same_basket_and_promotions_always_price_the_same(
    lines: list[OfferLine], promotions: list[Promotion], context: OfferContext, rng
) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(promotions)
    rng.shuffle(shuffled)
    assert price_with_offers(lines, promotions, context) == price_with_offers(
        lines, shuffled, context
    )


@settings(max_examples=200)
@given(lines_st, promotions_st, context_st)
def test_a_promotion_that_does_not_apply_changes_nothing(
    lines: list[OfferLine], promotions: list[Promotion], context: OfferContext
) -> None:
    """Adding a promotion the basket is outside of (another channel) leaves the price alone."""
    elsewhere = Promotion(
        "zz", "elsewhere", PromotionKind.PERCENT_OFF, percent=50, priority=9,
        scope=Scope(channels=frozenset({"marketplace"})),
    )  # fmt: skip
    with_it = price_with_offers(lines, [*promotions, elsewhere], context)
    assert with_it.basket == price_with_offers(lines, promotions, context).basket


def test_a_basket_of_millions_of_units_is_priced_without_a_list_of_every_unit() -> None:
    """A checkout line may be 10,000,000 units (grams): buy-N-get-M and bundles count them in
    runs, so pricing it allocates next to nothing (one tuple per unit was a gigabyte)."""
    b2g1 = Promotion("b2g1", "买二送一", PromotionKind.BUY_N_GET_M, buy=2, get=1)
    any3 = Promotion(
        "any3", "任选3件99元", PromotionKind.BUNDLE_PRICE, bundle_quantity=3, bundle_price_fen=99
    )
    basket = [line(MILK, 1_000, 1_000_000), line(YOGURT, 600, 500_001)]
    tracemalloc.start()
    try:
        free = apply_promotions(basket, [b2g1], APP).discounts[0].amount
        bundled = apply_promotions(basket, [any3], APP).discounts[0].amount
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 1,500,001 units: 500,000 free, the cheapest (all 500,001 yogurts but one).
    assert free == 500_000 * 600
    # 500,000 bundles of the dearest 1,500,000 units: 1,000,000 milks and 500,000 yogurts.
    assert bundled == 1_000_000 * 1_000 + 500_000 * 600 - 500_000 * 99
    assert peak < 1_000_000
