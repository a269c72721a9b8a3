"""Recommendations on the database: till sales made through the real services, the offline build,
then what a guide at a store is shown for a member."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests import migrated
from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from tests.members.conftest import MakeMember, new_phone
from zhongtai.catalog.models import Sku
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings, get_settings
from zhongtai.guides.cli import app
from zhongtai.guides.recommendation_checks import (
    BLENDS,
)
from zhongtai.guides.recommendation_models import PopularSku, RecommendationBuild, SkuNeighbour
from zhongtai.guides.recommendation_rules import (
    DEFAULT_PARAMETERS,
    Reason,
    Recommendation,
)
from zhongtai.guides.recommendations import (
    BuildSummary,
    build_recommendations,
    latest_parameters,
    recommend_for_member,
)
from zhongtai.inventory import service as inventory
from zhongtai.inventory.models import MovementKind
from zhongtai.members import service as members
from zhongtai.members.models import IdentityKind, Member
from zhongtai.members.pii import PiiCipher, cipher_for
from zhongtai.orders import pos
from zhongtai.orders.kinds import TenderType
from zhongtai.orders.tender_rules import Tender
from zhongtai.stores.models import Location

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


class Shop:
    """Two stores carrying the same SKUs, and tills that ring members' sales at a given time."""

    def __init__(self, session: Session, stock: StockFactory, make_member: MakeMember) -> None:
        self.session = session
        self.stock = stock
        self.make_member = make_member
        self.store = stock.location()
        self.other_store = stock.location()
        names = ("pasta", "sauce", "cheese", "milk", "bread", "soap", "wine")
        self.sku: dict[str, Sku] = {name: stock.sku() for name in names}
        for store in (self.store, self.other_store):
            for sku in self.sku.values():
                stock.receive(store, sku, 50)

    def sell(
        self,
        member: Member | None,
        names: Sequence[str],
        at: datetime,
        store: Location | None = None,
    ) -> None:
        store = store or self.store
        till = Principal(
            kind="api_key",
            id=uuid.uuid4(),
            name="till",
            permissions=frozenset(Permission),
            store_ids=frozenset({store.id}),
            channel=Channel.POS,
            terminal_id="T1",
        )
        sale = pos.PosSale(
            client_sale_id=uuid.uuid4(),
            store_id=store.id,
            terminal_code="T1",
            lines=[pos.PosLine(self.sku[name].id, 1) for name in names],
            tenders=[Tender(TenderType.CASH, 1000 * len(names))],
            member_id=member.id if member else None,
        )
        pos.record_till_sale(self.session, sale, caller=till, now=at)
        self.session.commit()

    def customers(self, count: int, names: Sequence[str], at: datetime) -> list[Member]:
        """``count`` members who each bought ``names`` together."""
        members = [self.make_member() for _ in range(count)]
        for member in members:
            self.sell(member, names, at)
        return members

    def names(self, recs: Sequence[Recommendation[uuid.UUID]]) -> list[str]:
        by_id = {sku.id: name for name, sku in self.sku.items()}
        return [by_id[r.sku_id] for r in recs]

    def build(self, at: datetime = NOW, **kw: Any) -> BuildSummary:
        """A build keeping the default blend (``choose=False``) unless told otherwise: a
        handful of test orders is too few for the build's own choice to mean much."""
        summary = build_recommendations(self.session, now=at, **{"choose": False, **kw})
        self.session.commit()
        return summary

    def shown(self, member: Member, store: Location | None = None) -> list[str]:
        store = store or self.store
        recs = recommend_for_member(self.session, member.id, store_id=store.id, now=NOW)
        return self.names(recs)


def member_maker(session: Session, cipher: PiiCipher) -> MakeMember:
    """New members, each found by a fresh phone number, as the till's card reader creates them."""

    def make() -> Member:
        member, _ = members.find_or_create_member(
            session, cipher, IdentityKind.PHONE, new_phone(), via="pos"
        )
        return member

    return make


@pytest.fixture
def shop(session: Session, stock: StockFactory, settings: Settings) -> Shop:
    return Shop(session, stock, member_maker(session, cipher_for(settings)))


@pytest.fixture
def stock(session: Session, factory: Factory) -> StockFactory:
    return StockFactory(session, factory)


def test_she_is_shown_what_others_bought_with_what_she_bought_and_why(shop: Shop) -> None:
    shop.customers(3, ["pasta", "sauce"], days_ago(10))
    shop.customers(4, ["milk", "bread"], days_ago(5))
    shop.customers(1, ["bread"], days_ago(5))
    her = shop.make_member()
    shop.sell(her, ["pasta"], days_ago(40))
    shop.sell(her, ["soap"], days_ago(3))
    shop.build()
    recs = recommend_for_member(shop.session, her.id, store_id=shop.store.id, now=NOW)
    assert [(r.reason, r.because_of) for r in recs[:2]] == [
        (Reason.BOUGHT_BEFORE, None),
        (Reason.BOUGHT_WITH, shop.sku["pasta"].id),
    ]
    assert shop.names(recs)[:2] == ["pasta", "sauce"]
    # Then the store's best sellers, most customers first.
    assert shop.names(recs)[2:4] == ["bread", "milk"]
    assert all(r.reason is Reason.POPULAR for r in recs[2:])


def test_what_she_just_bought_is_not_shown_again(shop: Shop) -> None:
    shop.customers(3, ["pasta", "sauce"], days_ago(10))
    her = shop.make_member()
    shop.sell(her, ["cheese"], days_ago(30))
    shop.sell(her, ["pasta"], days_ago(20))
    shop.build()
    shown = shop.shown(her)
    assert "pasta" not in shown  # her last order
    assert shown[:2] == ["cheese", "sauce"]
    shop.sell(her, ["cheese", "wine"], days_ago(2))
    shown = shop.shown(her)
    assert {"cheese", "wine"}.isdisjoint(shown)
    # Twenty days ago is no longer "just": she may need pasta again.
    assert shown[0] == "pasta"


def test_a_sku_without_stock_to_promise_at_her_store_is_not_shown_there(shop: Shop) -> None:
    shop.customers(3, ["pasta", "sauce"], days_ago(10))
    shop.customers(2, ["pasta", "cheese"], days_ago(12))
    her = shop.make_member()
    shop.sell(her, ["pasta"], days_ago(15))
    shop.build()
    assert shop.shown(her)[:2] == ["sauce", "cheese"]
    sauce, cheese = shop.sku["sauce"].id, shop.sku["cheese"].id
    inventory.adjust_stock(
        shop.session, shop.store.id, sauce, -47, reason="damaged", approver="manager",
        kind=MovementKind.WRITE_OFF,
    )  # fmt: skip
    # Cheese is on the shelf but all of it is kept back as safety stock.
    inventory.set_stock_levels(
        shop.session, shop.store.id, cheese, safety_stock=48, low_stock_level=0
    )
    shop.session.commit()
    shown_here = shop.shown(her)
    assert "sauce" not in shown_here and "cheese" not in shown_here
    assert shop.shown(her, shop.other_store)[:2] == ["sauce", "cheese"]


def test_a_member_without_history_gets_her_stores_popular_skus(shop: Shop) -> None:
    shop.customers(3, ["milk"], days_ago(5))
    shop.customers(2, ["bread"], days_ago(5))
    for member in shop.customers(5, ["wine"], days_ago(5)):
        shop.sell(member, ["wine"], days_ago(4), store=shop.other_store)
    shop.customers(6, ["soap"], days_ago(6))
    for member in [shop.make_member() for _ in range(6)]:
        shop.sell(member, ["cheese"], days_ago(6), store=shop.other_store)
    shop.build()
    newcomer = shop.make_member()
    recs = recommend_for_member(shop.session, newcomer.id, store_id=shop.store.id, now=NOW)
    assert all(r.reason is Reason.POPULAR for r in recs)
    # Her store's list first (cheese sells only at the other store), then the chain's.
    assert shop.names(recs) == ["soap", "wine", "milk", "bread", "cheese"]


def test_a_rebuild_replaces_the_old_lists(shop: Shop, session: Session) -> None:
    shop.customers(3, ["pasta", "sauce"], days_ago(100))
    shop.build()
    newcomer = shop.make_member()
    assert shop.shown(newcomer) == ["pasta", "sauce"]
    pasta = shop.sku["pasta"].id
    neighbours = select(SkuNeighbour.neighbour_sku_id).where(SkuNeighbour.sku_id == pasta)
    assert list(session.scalars(neighbours)) == [shop.sku["sauce"].id]
    shop.customers(2, ["pasta", "cheese"], days_ago(10))
    shop.build(lookback_days=30)
    assert list(session.scalars(neighbours)) == [shop.sku["cheese"].id]
    assert sorted(shop.shown(newcomer)) == ["cheese", "pasta"]
    builds = list(session.scalars(select(RecommendationBuild).order_by(RecommendationBuild.id)))
    assert [b.orders_read for b in builds] == [3, 2]
    assert session.scalar(select(func.count()).select_from(SkuNeighbour)) == 2
    assert builds[-1].neighbour_pairs == 2
    popular = session.scalars(select(PopularSku.sku_id).where(PopularSku.store_id.is_(None)))
    assert set(popular) == {pasta, shop.sku["cheese"].id}


def test_the_build_reads_members_purchases_only_and_records_what_it_read(
    shop: Shop, session: Session
) -> None:
    shop.customers(2, ["pasta", "sauce", "cheese"], days_ago(3))
    shop.sell(None, ["pasta", "wine"], days_ago(3))  # an anonymous till sale
    shop.build(top_k=1)
    build = session.scalars(select(RecommendationBuild)).one()
    assert (build.orders_read, build.lines_read, build.members, build.skus) == (2, 6, 2, 3)
    assert build.neighbour_pairs == 3  # one neighbour each: top_k=1
    assert build.parameters["top_k"] == 1
    assert build.built_at == NOW and build.history_since == NOW - timedelta(days=365)
    stored = session.scalars(select(PopularSku.sku_id)).all()
    assert shop.sku["wine"].id not in stored


def test_serving_blends_as_the_latest_build_chose(shop: Shop) -> None:
    shop.customers(5, ["milk", "bread"], days_ago(5))
    shop.customers(1, ["bread"], days_ago(5))
    her = shop.make_member()
    shop.sell(her, ["pasta"], days_ago(40))
    shop.sell(her, ["soap"], days_ago(3))
    shop.build(parameters=replace(DEFAULT_PARAMETERS, popular_weight=10.0))
    assert latest_parameters(shop.session).popular_weight == 10.0
    assert shop.shown(her)[:3] == ["bread", "milk", "pasta"]
    shop.build()
    assert shop.shown(her)[:3] == ["pasta", "bread", "milk"]


def test_the_build_checks_itself_on_members_last_orders_and_keeps_a_blend(
    shop: Shop, session: Session
) -> None:
    # Members who buy the same again: their last order repeats an earlier one.
    for member in shop.customers(4, ["wine"], days_ago(30)):
        shop.sell(member, ["bread"], days_ago(20))
        shop.sell(member, ["wine"], days_ago(2))
    summary = shop.build(choose=True)
    assert summary.check is not None
    assert summary.check.model.customers == 4
    assert summary.check.model.hit_rate == 1.0
    assert (summary.parameters.repeat_weight, summary.parameters.popular_weight) in BLENDS
    build = session.scalars(select(RecommendationBuild)).one()
    assert (build.checked_members, build.hit_rate_at_10) == (4, 1.0)
    assert build.popularity_hit_rate_at_10 == summary.check.popularity.hit_rate
    assert latest_parameters(session) == summary.parameters


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = migrated.sqlite_file(tmp_path / "cli.db")
    monkeypatch.setenv("ZHONGTAI_DATABASE_URL", url)
    get_settings.cache_clear()
    database = Database.connect(url)
    yield database
    database.dispose()
    get_settings.cache_clear()


def test_build_recommendations_commits_the_lists_and_prints_what_it_read(
    cli_db: Database, settings: Settings
) -> None:
    with cli_db.writer() as s:
        shop = Shop(s, StockFactory(s, Factory(s)), member_maker(s, cipher_for(settings)))
        shop.customers(2, ["pasta", "sauce"], days_ago(1))
    result = CliRunner().invoke(app, ["build-recommendations", "--now", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    assert "from 2 orders (4 lines) of 2 members" in result.output
    assert "2 neighbours of 2 SKUs" in result.output
    assert "self-check: no member has two orders yet" in result.output
    with cli_db.reader() as s:
        assert s.scalar(select(func.count()).select_from(SkuNeighbour)) == 2
        assert s.scalar(select(func.count()).select_from(RecommendationBuild)) == 1
