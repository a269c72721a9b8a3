"""On PostgreSQL, many clients at once: members' quotes placed while the members are being
erased, and other customers quoting the same stock. Each quote ends either placed (its order
exists and its stock stays held for it) or let go of by the erasure (its stock available
again) — never both, never neither — no unit is held twice, and nobody deadlocks.

Each member's two quotes hold two SKUs in the order opposite to their ids, and the other
customers hold both SKUs in one basket: an erasure letting go of its quotes one after the
other would lock the two balance rows against the order every checkout locks them in."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pytest
from sqlalchemy import func, select

from tests.factories import APP_CALLER, Factory
from tests.races import MANY_CONNECTIONS, all_at_once, race_database, stock_of
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.audit import AuditEntry
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict
from zhongtai.core.settings import Settings
from zhongtai.inventory import service as inventory
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.models import Reservation, ReservationLine, ReservationStatus
from zhongtai.inventory.rules import Line
from zhongtai.members import service as members
from zhongtai.members.errors import MemberErased
from zhongtai.members.models import IdentityKind, Member, MemberStatus
from zhongtai.members.pii import cipher_for
from zhongtai.orders import checkout, placing
from zhongtai.orders.errors import NoStoreCanFulfil
from zhongtai.orders.kinds import FulfillmentType, SalesChannel
from zhongtai.orders.models import Order, Quote
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability, PilotScope
from zhongtai.stores.service_pilot import upsert_pilot_rule

pytestmark = MANY_CONNECTIONS
CIPHER = cipher_for(Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef"))
MEMBERS = 8
SHOPPERS = 8
#: Units of each SKU nobody holds when the race starts: the shoppers lock the balance rows
#: from the start, not only once an erasure let go of some.
SPARE = 4
#: Quotes each shopper asks for, one after the other.
TRIES = 3
_phones = itertools.count(13700000001)
_shops = itertools.count(1)


@pytest.fixture(scope="module")
def race_db() -> Iterator[Database]:
    with race_database("zt_erased_quote_holds", pool_size=MEMBERS * 3 + SHOPPERS) as database:
        yield database


@dataclass(frozen=True)
class Shop:
    store_id: uuid.UUID
    low: uuid.UUID  # the SKU locked first
    high: uuid.UUID


def _shop(db: Database, on_hand: int) -> Shop:
    """A pickup store with ``on_hand`` units of each of two SKUs."""
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        stores.set_capability(s, store.id, Capability.PICKUP)
        upsert_pilot_rule(
            s, feature="pickup", scope=PilotScope.CHAIN, scope_value="*", enabled=True
        )
        code = f"QHOLD{next(_shops)}"
        category = catalog.create_category(s, code=code, name="race", parent_id=None)
        product = catalog.create_product(
            s,
            code=code,
            name="热卖",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[catalog.NewSku(code=f"{code}-{i}", name=str(i), base_price=1000) for i in (0, 1)],
        )
        low, high = sorted(sku.id for sku in product.skus)
        inventory.receive_stock(
            s, store.id, [inventory.ReceiptLine(low, on_hand), inventory.ReceiptLine(high, on_hand)]
        )
        return Shop(store.id, low, high)


def _quote(db: Database, shop: Shop, skus: list[uuid.UUID], member_id: uuid.UUID | None) -> Quote:
    with db.writer() as s, s.begin():
        return checkout.quote_checkout(
            s,
            checkout.QuoteRequest(
                channel=SalesChannel.APP,
                fulfillment_type=FulfillmentType.PICKUP,
                lines=[Line(sku, 1) for sku in skus],
                store_id=shop.store_id,
                member_id=member_id,
            ),
            caller=APP_CALLER,
        )


def _member_with_two_quotes(db: Database, shop: Shop) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A member and her two open quotes: the first (older id) holds the higher SKU."""
    with db.writer() as s, s.begin():
        member, _ = members.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, str(next(_phones)), via="app"
        )
    quotes = [_quote(db, shop, [sku], member.id).id for sku in (shop.high, shop.low)]
    return member.id, quotes


def _hold_status(db: Database, quote_id: uuid.UUID) -> ReservationStatus:
    with db.reader() as s:
        [reservation_id] = s.scalars(
            select(Quote.reservation_ids).where(Quote.id == quote_id)
        ).one()
        return s.scalars(
            select(Reservation.status).where(Reservation.id == uuid.UUID(reservation_id))
        ).one()


def _released_quotes(db: Database, member_id: uuid.UUID) -> object:
    """How many quotes her erasure's audit entry says it let go of."""
    with db.reader() as s:
        entry = s.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "member.erased", AuditEntry.subject_id == str(member_id)
            )
        ).one()
        assert entry.after is not None
        return entry.after["forgotten"]["released_quotes"]


def _shopping(db: Database, shop: Shop) -> object:
    """Another customer's quote of one unit of each SKU: its id, or why there was none."""
    try:
        return _quote(db, shop, [shop.low, shop.high], None).id
    except (InsufficientStock, NoStoreCanFulfil) as short:
        return short


def test_each_quote_ends_placed_or_let_go_and_no_unit_is_held_twice(race_db: Database) -> None:
    shop = _shop(race_db, on_hand=MEMBERS + SPARE)
    theirs = [_member_with_two_quotes(race_db, shop) for _ in range(MEMBERS)]
    assert stock_of(race_db, shop.store_id, shop.low) == (MEMBERS + SPARE, MEMBERS)

    def work(i: int) -> object:
        """Client i: her erasure, or the placing of one of her quotes, or another customer
        quoting one unit of each SKU, again and again (the spare units, then only units let
        go of by an erasure are left)."""
        try:
            if i < MEMBERS:
                with race_db.writer() as s, s.begin():
                    return members.erase_member(s, theirs[i][0]).status
            if i < MEMBERS * 3:
                _, quotes = theirs[(i - MEMBERS) // 2]
                with race_db.writer() as s, s.begin():
                    return placing.place_order(
                        s, placing.PlaceOrder(quotes[(i - MEMBERS) % 2]), caller=APP_CALLER
                    ).order.id
        except Conflict as refused:
            return refused
        return [_shopping(race_db, shop) for _ in range(TRIES)]

    outcomes = all_at_once(MEMBERS * 3 + SHOPPERS, work)

    placed_orders = 0
    let_go = 0
    for n, (member_id, quotes) in enumerate(theirs):
        erasure = outcomes[n]
        placings = outcomes[MEMBERS + 2 * n : MEMBERS + 2 * n + 2]
        with race_db.reader() as s:
            status = s.scalar(select(Member.status).where(Member.id == member_id))
            orders = {
                row.quote_id: row.id
                for row in s.execute(
                    select(Order.quote_id, Order.id).where(Order.quote_id.in_(quotes))
                )
            }
        if status is MemberStatus.ERASED:  # she was erased before either placing
            assert erasure is MemberStatus.ERASED
            assert all(isinstance(p, MemberErased) for p in placings), placings
            assert orders == {}
            assert [_hold_status(race_db, q) for q in quotes] == [ReservationStatus.RELEASED] * 2
            assert _released_quotes(race_db, member_id) == 2
            let_go += 2
        else:  # a placing came first: her erasure waited for it, and was refused
            assert isinstance(erasure, Conflict) and not isinstance(erasure, MemberErased)
            assert erasure.extra["open_orders"], erasure.extra
            assert [orders.get(q) for q in quotes] == placings, "both placed, as answered"
            assert [_hold_status(race_db, q) for q in quotes] == [ReservationStatus.ACTIVE] * 2
            placed_orders += 2
    assert placed_orders + let_go == 2 * MEMBERS
    shoppers = [answer for tries in outcomes[MEMBERS * 3 :] for answer in cast(list[object], tries)]
    served = [x for x in shoppers if isinstance(x, uuid.UUID)]
    assert len(served) <= SPARE + let_go // 2, "only spare units and units let go of"

    with race_db.reader() as s:
        active = (
            select(func.coalesce(func.sum(ReservationLine.quantity), 0))
            .join(Reservation, Reservation.id == ReservationLine.reservation_id)
            .where(
                Reservation.status == ReservationStatus.ACTIVE, ReservationLine.sku_id == shop.low
            )
        )
        held = s.scalar(active)
    # Each member's placed quotes hold one unit of each SKU; each served shopper one more.
    expected = placed_orders // 2 + len(served)
    assert stock_of(race_db, shop.store_id, shop.low) == (MEMBERS + SPARE, expected)
    assert stock_of(race_db, shop.store_id, shop.high) == (MEMBERS + SPARE, expected)
    assert held == expected, "the balance's reserved is the sum of the active holds"
    assert expected <= MEMBERS + SPARE, "no unit held twice"


def test_quotes_asked_while_she_is_erased_end_refused_or_let_go_and_nobody_deadlocks(
    race_db: Database,
) -> None:
    """Her quotes asked at the moment of her erasure: a quote that went first holds its stock
    until the erasure lets go of it; one that came after is refused as hers no more. A quote
    reads her row before it holds stock, as the erasure locks her row before it lets go of
    stock: neither waits for the other while holding what the other wants."""
    shop = _shop(race_db, on_hand=2 * MEMBERS)
    with race_db.writer() as s, s.begin():
        ids = [
            members.find_or_create_member(
                s, CIPHER, IdentityKind.PHONE, str(next(_phones)), via="app"
            )[0].id
            for _ in range(MEMBERS)
        ]

    def work(i: int) -> object:
        member_id = ids[i // 2]
        try:
            if i % 2 == 0:
                with race_db.writer() as s, s.begin():
                    return members.erase_member(s, member_id).status
            return _quote(race_db, shop, [shop.low, shop.high], member_id).id
        except MemberErased as refused:
            return refused

    outcomes = all_at_once(2 * MEMBERS, work)

    quoted = 0
    for n, member_id in enumerate(ids):
        erasure, asked = outcomes[2 * n], outcomes[2 * n + 1]
        assert erasure is MemberStatus.ERASED, erasure
        if isinstance(asked, uuid.UUID):  # the quote went first: the erasure let go of it
            assert _hold_status(race_db, asked) is ReservationStatus.RELEASED
            assert _released_quotes(race_db, member_id) == 1
            quoted += 1
        else:
            assert isinstance(asked, MemberErased), asked
            assert _released_quotes(race_db, member_id) == 0
    assert stock_of(race_db, shop.store_id, shop.low) == (2 * MEMBERS, 0)
    assert stock_of(race_db, shop.store_id, shop.high) == (2 * MEMBERS, 0)
    print(f"{quoted} of {MEMBERS} quotes went before their erasure")  # both kinds, usually
