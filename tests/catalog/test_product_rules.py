"""Product shape rules (fresh, weighed, apparel, duplicates) and the category tree, as pure data."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from tests.catalog.conftest import with_check_digit, wrong_check_digit
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.catalog.rules import (
    CategoryNode,
    Problem,
    SkuShape,
    build_category_tree,
    flatten_category_tree,
    new_product_problems,
)

GOOD = with_check_digit("690123456789")


def fields(problems: list[Problem]) -> set[str]:
    return {p.field for p in problems}


def test_a_plain_product_with_one_sku_has_no_problems() -> None:
    skus = [SkuShape(code="A", price_per=None, barcodes=(GOOD,))]
    assert new_product_problems(ProductKind.STANDARD, SaleUnit.PIECE, None, skus) == []


def test_fresh_goods_need_a_shelf_life() -> None:
    skus = [SkuShape(code="A", price_per=500)]
    assert fields(new_product_problems(ProductKind.FRESH, SaleUnit.GRAM, None, skus)) == {
        "shelf_life_days"
    }
    assert new_product_problems(ProductKind.FRESH, SaleUnit.GRAM, 7, skus) == []


def test_weighed_goods_need_the_grams_their_price_is_for_and_pieces_are_priced_per_one() -> None:
    weighed = new_product_problems(ProductKind.FRESH, SaleUnit.GRAM, 3, [SkuShape("A", None)])
    assert fields(weighed) == {"skus.0.price_per"}
    assert "500" in weighed[0].message
    pieces = new_product_problems(ProductKind.STANDARD, SaleUnit.PIECE, None, [SkuShape("A", 500)])
    assert fields(pieces) == {"skus.0.price_per"}


def test_apparel_variants_name_size_and_colour_once_each() -> None:
    skus = [
        SkuShape("A", None, size="M", colour="黑"),
        SkuShape("B", None, size="M"),
        SkuShape("C", None, size="M", colour="黑"),
    ]
    problems = new_product_problems(ProductKind.APPAREL, SaleUnit.PIECE, None, skus)
    assert fields(problems) == {"skus.1.colour", "skus.2"}


def test_duplicates_within_one_request_name_the_second_occurrence() -> None:
    other = with_check_digit("690000000001")
    skus = [
        SkuShape("A", None, barcodes=(GOOD,)),
        SkuShape("A", None, barcodes=(other, GOOD)),
    ]
    problems = new_product_problems(ProductKind.STANDARD, SaleUnit.PIECE, None, skus)
    assert fields(problems) == {"skus.1.code", "skus.1.barcodes.1"}


def test_a_bad_barcode_is_reported_at_its_position() -> None:
    skus = [SkuShape("A", None, barcodes=(GOOD, wrong_check_digit(GOOD)))]
    problems = new_product_problems(ProductKind.STANDARD, SaleUnit.PIECE, None, skus)
    assert fields(problems) == {"skus.0.barcodes.1"}
    assert "check digit" in problems[0].message


def test_a_product_needs_at_least_one_sku() -> None:
    assert fields(new_product_problems(ProductKind.STANDARD, SaleUnit.PIECE, None, [])) == {"skus"}


@st.composite
def forests(draw: st.DrawFn) -> list[CategoryNode]:
    """Random trees: each node's parent is an earlier node or none."""
    count = draw(st.integers(0, 30))
    nodes: list[CategoryNode] = []
    for i in range(count):
        parent = draw(st.none() | st.sampled_from(nodes)) if nodes else None
        nodes.append(
            CategoryNode(
                id=uuid.UUID(int=i + 1),
                code=draw(st.text(alphabet="abc", min_size=1, max_size=3)) + str(i),
                name=f"n{i}",
                parent_id=parent.id if parent else None,
            )
        )
    return nodes


@given(forests())
def test_the_tree_shows_every_category_once_each_under_its_parent(
    nodes: list[CategoryNode],
) -> None:
    parents = {n.id: n.parent_id for n in nodes}
    roots = build_category_tree(nodes)
    flat = flatten_category_tree(roots)
    assert sorted(n.id for n in flat) == sorted(parents)
    position = {n.id: i for i, n in enumerate(flat)}
    for node in flat:
        parent = parents[node.id]
        if parent is None:
            assert node.depth == 0
        else:
            assert position[parent] < position[node.id]
            assert node.depth == next(n.depth for n in flat if n.id == parent) + 1
        codes = [c.code for c in node.children]
        assert codes == sorted(codes)
