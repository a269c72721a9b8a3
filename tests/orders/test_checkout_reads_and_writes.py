"""What a quote and a placing send to the database: each fact read once, the order written
without reading it back, and a quote claimed only when it can become the order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select, text
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.orm import Session

from tests.factories import APP_CALLER, Factory
from tests.members.conftest import MakeMember
from tests.orders.conftest import NEARBY, Chain, ok, place, quote
from tests.statements import recorded_on
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.fulfillment.location_facts import Address
from zhongtai.inventory import allocation
from zhongtai.inventory.rules import Line
from zhongtai.orders.checkout import QuoteRequest, quote_checkout
from zhongtai.orders.errors import NoStoreCanFulfil, QuoteExpired
from zhongtai.orders.kinds import FulfillmentType, SalesChannel
from zhongtai.orders.models import Order, Quote
from zhongtai.orders.placing import PlaceOrder, place_order
from zhongtai.orders.settings import order_settings

#: The NEARBY address of the order tests, inside the store's delivery radius.
CUSTOMER = Address(31.2404, 121.4737, "黄浦区某小区 1 号楼")


@contextmanager
def statements_on(connection: Connection, session: Session) -> Iterator[list[str]]:
    """The SQL statements the block sends, normalised to single spaces."""
    session.connection()
    with recorded_on(connection, lambda statement, _: " ".join(statement.split())) as sent:
        yield sent


def delivery_quote(session: Session, chain: Chain, quantity: int = 1, **kw: Any) -> Quote:
    return quote_checkout(
        session,
        QuoteRequest(
            channel=SalesChannel.APP,
            fulfillment_type=FulfillmentType.DELIVERY,
            lines=[Line(chain.skus[0].id, quantity), Line(chain.skus[1].id, 1)],
            address=CUSTOMER,
        ),
        caller=APP_CALLER,
        **kw,
    )


def test_a_quote_reads_its_baskets_lineages_and_the_channels_allocation_rules_once(
    session: Session, connection: Connection, chain: Chain
) -> None:
    allocation.set_allocation(session, "app", None, share_percent=50, keep_units=0)
    with pytest.raises(NoStoreCanFulfil):  # half of the 10 units on hand are the app's
        delivery_quote(session, chain, quantity=6)
    with statements_on(connection, session) as sent:
        held = delivery_quote(session, chain, quantity=5)
    # The refused quote read the lineages at this reference generation: kept, not read again.
    assert len([s for s in sent if "RECURSIVE lineage" in s]) == 0
    assert len([s for s in sent if "channel_allocations" in s]) == 1
    assert held.lines[0]["quantity"] == 5
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 5


def _reference_reads(sent: list[str]) -> dict[str, int]:
    return {
        "lineages": sum("RECURSIVE lineage" in s for s in sent),
        "pilot rules": sum(s.startswith("SELECT pilot_rules.") for s in sent),
        "opening hours": sum("FROM opening_hours" in s for s in sent),
        "promotions": sum(s.startswith("SELECT promotions.") for s in sent),
    }


def test_a_second_quote_reads_no_reference_data_until_hq_changes_some(
    session: Session, connection: Connection, chain: Chain
) -> None:
    with statements_on(connection, session) as first:
        delivery_quote(session, chain)
    with statements_on(connection, session) as second:
        delivery_quote(session, chain)
    assert _reference_reads(second) == dict.fromkeys(_reference_reads(second), 0), second
    assert len(second) < len(first)
    # Any write to a reference table (here the chain's pilot rules) and they are read again.
    session.execute(text("UPDATE pilot_rules SET enabled = enabled"))
    with statements_on(connection, session) as third:
        delivery_quote(session, chain)
    assert _reference_reads(third) == {
        "lineages": 0,  # no pilot rule nor offer of this chain is set on a category
        "pilot rules": 1,
        "opening hours": 1,
        "promotions": 1,
    }, third


def test_placing_claims_the_quote_in_one_statement_and_reads_nothing_back(
    session: Session, connection: Connection, chain: Chain
) -> None:
    held = delivery_quote(session, chain)
    with statements_on(connection, session) as sent:
        placed = place_order(session, PlaceOrder(held.id, contact_name="王女士"), caller=APP_CALLER)
        session.flush()
    assert sent[0].startswith("UPDATE checkout_quotes SET order_id")
    assert not [s for s in sent if s.startswith("SELECT")]
    assert held.order_id == placed.order.id, "the quote in the session knows its order"
    assert [x.sku_id for x in placed.order.lines] == [chain.skus[0].id, chain.skus[1].id]


def test_placing_a_members_quote_judges_her_in_the_claim_and_reads_nothing_more(
    session: Session, connection: Connection, chain: Chain, make_member: MakeMember
) -> None:
    """Whether she was erased is part of the claim's condition: no statement is added."""
    member = make_member()
    held = quote_checkout(
        session,
        QuoteRequest(
            channel=SalesChannel.APP,
            fulfillment_type=FulfillmentType.DELIVERY,
            lines=[Line(chain.skus[0].id, 1), Line(chain.skus[1].id, 1)],
            address=CUSTOMER,
            member_id=member.id,
        ),
        caller=APP_CALLER,
    )
    anonymous = delivery_quote(session, chain)
    with statements_on(connection, session) as hers:
        place_order(session, PlaceOrder(held.id), caller=APP_CALLER)
        session.flush()
    with statements_on(connection, session) as nobodys:
        place_order(session, PlaceOrder(anonymous.id), caller=APP_CALLER)
        session.flush()
    assert hers[0].startswith("UPDATE checkout_quotes SET order_id")
    assert "FROM members" in hers[0]
    assert not [s for s in hers if s.startswith("SELECT")]
    assert len(hers) == len(nobodys)


@dataclass(frozen=True)
class SentInsert:
    rows: int  # rows of VALUES in the statement
    cached: bool  # its compiled form came from SQLAlchemy's statement cache


def inserts_on(connection: Connection, table: str) -> AbstractContextManager[list[SentInsert]]:
    """Each INSERT into ``table`` the block sends."""

    def insert(statement: str, ctx: Any) -> SentInsert | None:
        if not statement.startswith(f"INSERT INTO {table} "):
            return None
        return SentInsert(statement.count("), (") + 1, ctx.cache_hit is CacheStats.CACHE_HIT)

    return recorded_on(connection, insert)


def test_placing_writes_the_orders_lines_in_one_insert_statement(
    session: Session, connection: Connection, chain: Chain
) -> None:
    first, second = delivery_quote(session, chain), delivery_quote(session, chain)
    session.connection()
    with inserts_on(connection, "order_lines") as sent:
        place_order(session, PlaceOrder(first.id), caller=APP_CALLER)
        placed = place_order(session, PlaceOrder(second.id), caller=APP_CALLER)
    assert [x.rows for x in sent] == [2, 2], "each order's lines in one statement"
    assert sent[1].cached, "the second order of two lines compiles no new statement"
    session.expire_all()
    stored = session.get(Order, placed.order.id)
    assert stored is not None
    assert [(x.line_no, x.sku_id) for x in stored.lines] == [
        (1, chain.skus[0].id),
        (2, chain.skus[1].id),
    ]


def test_the_order_answered_at_placing_is_the_order_stored(
    client: TestClient, chain: Chain
) -> None:
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(2, 1)},
    )
    placed = place(client, chain.app, q["id"], contact_phone="13812345678", note="门口")
    stored = ok(client.get(f"/api/v1/orders/{placed['id']}", headers=chain.app))
    assert {k: stored[k] for k in placed} == placed
    assert placed["contact_phone_masked"] == "138****5678"
    assert [(x["quantity"], x["net_amount"] > 0) for x in placed["lines"]] == [(2, True), (1, True)]


def test_a_quote_of_another_channel_is_refused_and_stays_placeable_by_its_own(
    client: TestClient, chain: Chain, factory: Factory
) -> None:
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)},
    )
    marketplace = factory.api_key_headers(Channel.MARKETPLACE)
    refused = client.post("/api/v1/orders", json={"quote_id": q["id"]}, headers=marketplace)
    assert refused.status_code == 409, refused.text
    assert "app channel" in refused.json()["detail"]
    first = place(client, chain.app, q["id"])
    again = client.post("/api/v1/orders", json={"quote_id": q["id"]}, headers=chain.app)
    assert again.status_code == 200 and again.json()["id"] == first["id"]


def test_an_expired_quote_answers_409_and_places_nothing(session: Session, chain: Chain) -> None:
    now = utcnow()
    held = delivery_quote(session, chain, now=now)
    later = now + timedelta(seconds=order_settings().quote_ttl_seconds)
    with pytest.raises(QuoteExpired):
        place_order(session, PlaceOrder(held.id), caller=APP_CALLER, now=later)
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert session.scalar(select(Quote.order_id).where(Quote.id == held.id)) is None
