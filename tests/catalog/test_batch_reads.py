"""A basket's prices and its SKUs' category lineages each read in one statement, and agree with
what the one-at-a-time reads answer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests.catalog.conftest import HQ, CatalogFactory
from tests.factories import Factory
from tests.statements import statements_on
from zhongtai.catalog import categories
from zhongtai.catalog.lookup import sku_price, sku_prices
from zhongtai.catalog.models import Category
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput, NotFound

# --- prices ---------------------------------------------------------------------------------


def test_a_basket_is_priced_in_one_statement_as_each_sku_alone_would_be(
    session: Session, connection: Connection, factory: Factory, catalog: CatalogFactory
) -> None:
    store, other = factory.location(), factory.location()
    plain = catalog.sku(base_price=1000)
    store_price = catalog.sku(base_price=2000)
    catalog.override(store_price, 1800, store=store)
    catalog.override(store_price, 1, store=other)
    app_price = catalog.sku(base_price=3000)
    catalog.override(app_price, 2500, channel=Channel.APP)
    catalog.override(app_price, 2400, channel=Channel.POS)
    started = utcnow() - timedelta(minutes=1)
    ended = catalog.sku(base_price=4000)
    catalog.override(ended, 10, valid_from=started, valid_to=started + timedelta(hours=1))
    catalog.override(ended, 3900, valid_from=started + timedelta(hours=3))
    now = started + timedelta(hours=2)  # the first override has ended, the second not begun
    ids = [plain.id, store_price.id, app_price.id, ended.id]
    audience: dict[str, Any] = {"caller": HQ, "store_id": store.id, "channel": Channel.APP}

    with statements_on(connection, session) as sent:
        batch = sku_prices(session, ids, at=now, **audience)

    assert len(sent) == 1, sent
    assert list(batch) == ids
    one_by_one = {sku_id: sku_price(session, sku_id, at=now, **audience) for sku_id in ids}
    assert batch == one_by_one
    assert [batch[x].price.amount for x in ids] == [1000, 1800, 2500, 4000]


def test_a_sku_named_twice_is_priced_once(session: Session, catalog: CatalogFactory) -> None:
    sku = catalog.sku(base_price=1234)
    prices = sku_prices(session, [sku.id, sku.id], caller=HQ)
    assert list(prices) == [sku.id]
    assert prices[sku.id].price.amount == 1234


def test_no_skus_need_no_prices(session: Session) -> None:
    assert sku_prices(session, [], caller=HQ) == {}


def test_an_unknown_sku_in_a_basket_is_a_404_naming_it(
    session: Session, catalog: CatalogFactory
) -> None:
    known, unknown = catalog.sku(), uuid.uuid4()
    with pytest.raises(NotFound) as caught:
        sku_prices(session, [known.id, unknown], caller=HQ)
    assert str(unknown) in str(caught.value)


def test_a_basket_priced_for_a_store_that_does_not_exist_is_refused(
    session: Session, catalog: CatalogFactory
) -> None:
    with pytest.raises(InvalidInput) as caught:
        sku_prices(session, [catalog.sku().id], caller=HQ, store_id=uuid.uuid4())
    assert caught.value.errors[0]["field"] == "store_id"


# --- category lineages ----------------------------------------------------------------------


def test_every_skus_lineage_is_read_in_one_statement_nearest_first(
    session: Session, connection: Connection, catalog: CatalogFactory
) -> None:
    food = catalog.category()
    fresh = catalog.category(parent=food)
    fish = catalog.category(parent=fresh)
    drinks = catalog.category()
    salmon = catalog.product(category=fish).skus[0]
    cod = catalog.product(category=fish).skus[0]
    tea = catalog.product(category=drinks).skus[0]

    with statements_on(connection, session) as sent:
        lineages = categories.sku_category_lineages(session, [salmon.id, cod.id, tea.id])

    assert len(sent) == 1, sent
    assert lineages == {
        salmon.id: [fish.id, fresh.id, food.id],
        cod.id: [fish.id, fresh.id, food.id],
        tea.id: [drinks.id],
    }


def test_lineages_of_many_categories_match_each_ones_own_lineage(
    session: Session, catalog: CatalogFactory
) -> None:
    top = catalog.category()
    chain = [top]
    for _ in range(5):
        chain.append(catalog.category(parent=chain[-1]))
    sibling = catalog.category(parent=top)
    wanted = [c.id for c in (*chain, sibling)]
    lineages = categories.category_lineages(session, wanted)
    assert lineages == {c: categories.category_lineage(session, c) for c in wanted}


def test_unknown_categories_and_skus_are_left_out(
    session: Session, catalog: CatalogFactory
) -> None:
    known = catalog.category()
    assert categories.category_lineages(session, [known.id, uuid.uuid4()]) == {known.id: [known.id]}
    assert categories.sku_category_lineages(session, [uuid.uuid4()]) == {}
    assert categories.category_lineages(session, []) == {}


def test_a_lineage_is_cut_at_the_deepest_tree_allowed(
    session: Session, make_deep: Callable[[int], list[uuid.UUID]]
) -> None:
    deepest = make_deep(categories.MAX_CATEGORY_DEPTH + 3)[-1]
    lineage = categories.category_lineages(session, [deepest])[deepest]
    assert len(lineage) == categories.MAX_CATEGORY_DEPTH
    assert lineage == categories.category_lineage(session, deepest)


@pytest.fixture
def make_deep(session: Session) -> Callable[[int], list[uuid.UUID]]:
    """A chain of categories deeper than the services allow, written as raw rows (old data)."""

    def make(depth: int) -> list[uuid.UUID]:
        ids: list[uuid.UUID] = []
        for n in range(depth):
            row = Category(
                code=f"DEEP-{uuid.uuid4().hex[:8]}-{n}",
                name=f"层 {n}",
                parent_id=ids[-1] if ids else None,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
        return ids

    return make
