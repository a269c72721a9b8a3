"""Pick lists a clerk walks, and what a pick hands over, charges and refunds."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.fulfillment.rules import (
    Handover,
    PickLine,
    Substitute,
    pick_list,
    pick_outcome,
)
from zhongtai.orders.kinds import SubstitutionPreference as Pref

SALMON_SKU, TROUT_SKU = uuid.UUID(int=1), uuid.UUID(int=2)


def line(
    sku_code: str = "SALMON",
    quantity: int = 4,
    paid_fen: int = 4_000,
    zone: str = "chilled",
    category: str = "fish",
    sku_id: uuid.UUID = SALMON_SKU,
) -> PickLine:
    return PickLine(
        line_id=uuid.uuid4(),
        sku_id=sku_id,
        sku_code=sku_code,
        name=sku_code.title(),
        quantity=quantity,
        paid_fen=paid_fen,
        zone=zone,
        category_code=category,
        category_name=category.title(),
    )


# --- pick lists ------------------------------------------------------------------------------


def test_a_pick_list_groups_lines_by_zone_then_category_in_sku_order() -> None:
    lines = [
        line("YOGURT", zone="chilled", category="dairy"),
        line("APPLE", zone="ambient", category="fruit"),
        line("SALMON", zone="chilled", category="fish"),
        line("MILK", zone="chilled", category="dairy"),
        line("BREAD", zone="ambient", category="bakery"),
    ]
    groups = pick_list(lines)
    assert [(g.zone, g.category_code) for g in groups] == [
        ("ambient", "bakery"),
        ("ambient", "fruit"),
        ("chilled", "dairy"),
        ("chilled", "fish"),
    ]
    assert [x.sku_code for x in groups[2].lines] == ["MILK", "YOGURT"]
    assert groups[2].category_name == "Dairy"


def test_the_stores_walking_route_orders_the_zones() -> None:
    lines = [line("A", zone="ambient"), line("F", zone="frozen"), line("C", zone="chilled")]
    route = ["frozen", "chilled"]
    assert [g.zone for g in pick_list(lines, zone_order=route)] == ["frozen", "chilled", "ambient"]


def test_two_lines_of_the_same_sku_keep_the_order_they_came_in() -> None:
    first, second = line("SALMON", quantity=1), line("SALMON", quantity=2)
    assert pick_list([first, second])[0].lines == (first, second)


@given(
    st.lists(
        st.tuples(st.sampled_from("ABC"), st.sampled_from("xyz"), st.sampled_from("pqr")),
        max_size=30,
    )
)
def test_every_line_is_on_the_pick_list_once_and_each_zone_category_once(
    keys: list[tuple[str, str, str]],
) -> None:
    lines = [line(code, zone=zone, category=cat) for zone, cat, code in keys]
    groups = pick_list(lines)
    assert sorted(x.line_id for g in groups for x in g.lines) == sorted(x.line_id for x in lines)
    heads = [(g.zone, g.category_code) for g in groups]
    assert heads == sorted(set(heads))


# --- pick outcomes ---------------------------------------------------------------------------


def test_a_full_pick_hands_everything_over_and_refunds_nothing() -> None:
    result = pick_outcome(line(), 4, None, Pref.NONE)
    assert result.ok
    assert result.handed_over == (Handover(SALMON_SKU, 4, 4_000),)
    assert result.refund_fen == 0 and result.short == 0


def test_a_short_pick_refunds_the_missing_units_at_the_paid_unit_price() -> None:
    # 4 units paid 4,000 fen after a discount: 1,000 fen each, not the shelf price.
    result = pick_outcome(line(), 1, None, Pref.SIMILAR)
    assert result.short == 3
    assert result.refund_fen == 3_000
    assert result.handed_over == (Handover(SALMON_SKU, 1, 1_000),)


def test_nothing_picked_refunds_the_whole_line() -> None:
    result = pick_outcome(line(paid_fen=3_333), 0, None, Pref.NONE)
    assert result.handed_over == ()
    assert result.refund_fen == 3_333


def test_a_cheaper_similar_substitute_is_charged_its_price_and_the_difference_refunded() -> None:
    trout = Substitute(TROUT_SKU, 2, unit_price_fen=800)
    result = pick_outcome(line(), 2, trout, Pref.SIMILAR)
    assert result.ok
    assert result.handed_over == (Handover(SALMON_SKU, 2, 2_000), Handover(TROUT_SKU, 2, 1_600))
    assert result.substituted == 2 and result.short == 0
    assert result.refund_fen == 400


def test_a_dearer_substitute_never_costs_the_customer_more_than_the_original() -> None:
    premium = Substitute(TROUT_SKU, 1, unit_price_fen=2_500)
    result = pick_outcome(line(), 2, premium, Pref.SIMILAR)
    assert result.handed_over[1] == Handover(TROUT_SKU, 1, 1_000)
    assert result.short == 1
    assert result.refund_fen == 1_000


def test_a_substitute_for_a_customer_who_refused_substitutes_is_a_problem() -> None:
    result = pick_outcome(line(), 2, Substitute(TROUT_SKU, 2, 800), Pref.NONE)
    assert not result.ok
    assert result.problem is not None and "no substitutes" in result.problem
    assert result.handed_over == () and result.refund_fen == 0


def test_picking_more_than_was_ordered_is_a_problem() -> None:
    result = pick_outcome(line(quantity=4), 5, None, Pref.NONE)
    assert result.problem == "picked 5 but only 4 were ordered"


def test_substituting_more_units_than_are_missing_is_a_problem() -> None:
    result = pick_outcome(line(quantity=4), 3, Substitute(TROUT_SKU, 2, 800), Pref.SIMILAR)
    assert result.problem is not None and "only 1 units are missing" in result.problem


def test_the_same_sku_cannot_stand_in_for_itself() -> None:
    result = pick_outcome(line(), 2, Substitute(SALMON_SKU, 2, 800), Pref.SIMILAR)
    assert result.problem == "a substitute must be a different SKU"


def test_weighed_goods_short_by_some_grams_refund_in_the_customers_favour() -> None:
    # 500 g of beef paid 2,999 fen; 333 g weighed out. 2,999 x 333 / 500 = 1,997.334 fen kept.
    beef = line("BEEF", quantity=500, paid_fen=2_999)
    result = pick_outcome(beef, 333, None, Pref.NONE)
    assert result.handed_over == (Handover(SALMON_SKU, 333, 1_997),)
    assert result.refund_fen == 1_002


@st.composite
def picks(draw: st.DrawFn) -> tuple[PickLine, int, Substitute | None, Pref]:
    ordered = draw(st.integers(1, 2_000))
    paid = draw(st.integers(0, 1_000_000))
    picked = draw(st.integers(0, ordered))
    substitute = None
    if picked < ordered and draw(st.booleans()):
        substitute = Substitute(
            TROUT_SKU, draw(st.integers(1, ordered - picked)), draw(st.integers(0, 5_000))
        )
    pref = Pref.SIMILAR if substitute is not None else draw(st.sampled_from(list(Pref)))
    return line(quantity=ordered, paid_fen=paid), picked, substitute, pref


@given(picks())
def test_picked_substituted_and_short_units_make_up_the_order_and_money_is_conserved(
    pick: tuple[PickLine, int, Substitute | None, Pref],
) -> None:
    order_line, picked, substitute, pref = pick
    result = pick_outcome(order_line, picked, substitute, pref)
    assert result.ok
    assert result.picked + result.substituted + result.short == order_line.quantity
    charged = sum(h.charged_fen for h in result.handed_over)
    assert charged + result.refund_fen == order_line.paid_fen
    assert 0 <= result.refund_fen <= order_line.paid_fen
    if substitute is not None:
        sub = result.handed_over[-1]
        paid, ordered = order_line.paid_fen, order_line.quantity
        worth = paid * (picked + sub.quantity) // ordered - paid * picked // ordered
        assert sub.charged_fen <= min(worth, substitute.unit_price_fen * substitute.quantity)
