"""On PostgreSQL: placing a member's quote while she is being erased. Whichever commits first,
no order is left for an erased member: a placing meeting her erasure in flight waits for it
and is refused (409 ``member-erased``); an erasure meeting her placing in flight waits for it
and is refused (409, her order is under way)."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.factories import APP_CALLER
from tests.orders.test_order_concurrency import _store
from tests.races import race_database, stock_of, until_another_backend_waits_for_a_lock
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict
from zhongtai.core.settings import Settings
from zhongtai.inventory.rules import Line
from zhongtai.members import service as members
from zhongtai.members.errors import MemberErased
from zhongtai.members.models import IdentityKind, Member, MemberStatus
from zhongtai.members.pii import cipher_for
from zhongtai.orders import checkout, placing
from zhongtai.orders.kinds import FulfillmentType, SalesChannel
from zhongtai.orders.models import Order, Quote

CIPHER = cipher_for(Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef"))
_phones = itertools.count(13600000001)


@pytest.fixture(scope="module")
def race_db() -> Iterator[Database]:
    with race_database("zt_erased_checkout", pool_size=4) as database:
        yield database


def _quoted(db: Database) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A member and a committed pickup quote of hers holding one unit: (member, quote, store,
    SKU)."""
    store_id, sku_id = _store(db, on_hand=5)
    with db.writer() as s, s.begin():
        member, _ = members.find_or_create_member(
            s, CIPHER, IdentityKind.PHONE, str(next(_phones)), via="app"
        )
        quote = checkout.quote_checkout(
            s,
            checkout.QuoteRequest(
                channel=SalesChannel.APP,
                fulfillment_type=FulfillmentType.PICKUP,
                lines=[Line(sku_id, 1)],
                store_id=store_id,
                member_id=member.id,
            ),
            caller=APP_CALLER,
        )
        return member.id, quote.id, store_id, sku_id


def _first_in_flight(
    db: Database, first: Callable[[Session], object], then: Callable[[], object]
) -> object:
    """``first`` done and flushed in a transaction left open while ``then`` starts on a thread
    of its own; once ``then`` waits for a lock ``first`` holds, ``first`` commits. What
    ``then`` answered or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(then())
        except Conflict as refused:
            outcome.append(refused)

    with db.writer() as s:
        first(s)
        s.flush()
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=1)
        if thread.is_alive():  # waiting for the first, as it should
            until_another_backend_waits_for_a_lock(db, pid)
        s.commit()
        thread.join(timeout=30)
    [answer] = outcome
    return answer


def _place(db: Database, quote_id: uuid.UUID) -> placing.Placed:
    with db.writer() as s, s.begin():
        return placing.place_order(s, placing.PlaceOrder(quote_id), caller=APP_CALLER)


def _erase(db: Database, member_id: uuid.UUID) -> Member:
    with db.writer() as s, s.begin():
        return members.erase_member(s, member_id)


@pytest.mark.postgres_only
def test_a_placing_meeting_her_erasure_in_flight_waits_for_it_and_is_refused(
    race_db: Database,
) -> None:
    member_id, quote_id, store_id, sku_id = _quoted(race_db)

    answer = _first_in_flight(
        race_db,
        lambda s: members.erase_member(s, member_id),
        lambda: _place(race_db, quote_id),
    )

    assert isinstance(answer, MemberErased), answer
    assert answer.extra["member_id"] == str(member_id)
    with race_db.reader() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0
        assert s.scalar(select(Quote.order_id).where(Quote.id == quote_id)) is None
        assert s.scalar(select(Member.status).where(Member.id == member_id)) is (
            MemberStatus.ERASED
        )
    assert stock_of(race_db, store_id, sku_id) == (5, 0)  # her erasure let go of the quote's hold


@pytest.mark.postgres_only
def test_an_erasure_meeting_her_placing_in_flight_waits_for_it_and_is_refused(
    race_db: Database,
) -> None:
    member_id, quote_id, _, _ = _quoted(race_db)
    placed: list[placing.Placed] = []

    answer = _first_in_flight(
        race_db,
        lambda s: placed.append(
            placing.place_order(s, placing.PlaceOrder(quote_id), caller=APP_CALLER)
        ),
        lambda: _erase(race_db, member_id),
    )

    assert isinstance(answer, Conflict) and not isinstance(answer, MemberErased), answer
    assert answer.extra["open_orders"] == [placed[0].order.number]
    with race_db.reader() as s:
        assert s.scalar(select(Member.status).where(Member.id == member_id)) is (
            MemberStatus.ACTIVE
        )
        order = s.get(Order, placed[0].order.id)
        assert order is not None and order.member_id == member_id
