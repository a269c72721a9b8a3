"""Pickup codes tried by many clerks at once: a wrong code is counted in the transaction that
judged it, under the order's row lock, so no more than five codes are ever judged however many
clerks try together, and a right code after the fifth wrong one is refused. On PostgreSQL with
many clients, and on a SQLite file with many writers (which queue, and never deadlock).

Every client works in a transaction of its own as the pickup endpoint runs it: a refusal in
``pickup.COUNTED_REFUSALS`` is committed with its answer (the try it counted must outlive it),
any other answer is rolled back."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import pytest
from sqlalchemy import func, select, text

from tests import migrated
from tests.factories import clerk_of
from tests.fulfillment.orders_at_work import order_being_picked
from tests.races import (
    MANY_CONNECTIONS,
    all_at_once,
    race_database,
    stock_of,
    until_another_backend_waits_for_a_lock,
)
from zhongtai.core.auth.models import AuthFailure
from zhongtai.core.auth.principal import Principal
from zhongtai.core.db import Database
from zhongtai.core.errors import DomainError
from zhongtai.core.settings import Settings
from zhongtai.fulfillment import pickup, tasks
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.orders.errors import WrongPickupCode
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.models import Order

CLIENTS = 32
SETTINGS = Settings(secret_key="race-secret-0123456789abcdef0123456789abcdef")  # type: ignore[arg-type]
HANDED_OVER = 200
Test = TypeVar("Test", bound=Callable[..., None])


def on_postgres(test: Test) -> Test:
    """A race on PostgreSQL, among the modules that hold many connections (see tests.races)."""
    for mark in MANY_CONNECTIONS:
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    # Fewer connections than clients: most clients wait for one, as behind an API process.
    with race_database("zt_pickup_race", pool_size=8) as database:
        yield database


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A migrated SQLite file reached as the API reaches it: writers begin IMMEDIATE, one at a
    time, each on a connection of its own (not the test suite's one shared connection)."""
    url = migrated.sqlite_file(tmp_path_factory.mktemp("pickup_race") / "zhongtai.db")
    database = Database.connect(url)
    yield database
    database.dispose()


@dataclass(frozen=True)
class WaitingPickup:
    order_id: uuid.UUID
    number: str
    store_id: uuid.UUID
    sku_id: uuid.UUID
    code: str
    clerk: Principal

    def wrong_code(self, i: int) -> str:
        """The ``i``-th of many distinct wrong codes, as someone guessing would try them."""
        return f"{(int(self.code) + 1 + i) % 10**6:06d}"


def waiting_pickup(db: Database, gateway: SandboxPaymentGateway, prefix: str) -> WaitingPickup:
    picking = order_being_picked(db, gateway, FulfillmentType.PICKUP, prefix)
    with db.writer() as s, s.begin():
        tasks.pack_order(s, picking.order_id, providers={"sandbox": gateway})
        order = pickup.make_ready_for_pickup(s, picking.order_id, settings=SETTINGS)
        ticket = pickup.pickup_ticket(order, SETTINGS)
        number = order.number
    assert ticket is not None
    clerk = clerk_of(picking.store_id)
    return WaitingPickup(
        picking.order_id, number, picking.store_id, picking.ordered, ticket.code, clerk
    )


def try_code(db: Database, waiting: WaitingPickup, code: str, *, client: int = 0) -> int:
    """One clerk's try, at a counter of its own (its own address): the status it answers."""
    with db.writer() as s:
        try:
            pickup.hand_over_pickup(
                s,
                clerk=waiting.clerk,
                client_ip=f"10.0.{client // 250}.{client % 250 + 1}",
                settings=SETTINGS,
                order_ref=waiting.number,
                code=code,
            )
        except pickup.COUNTED_REFUSALS as refused:
            s.commit()
            return refused.status
        except DomainError as refused:
            s.rollback()
            return refused.status
        s.commit()
        return HANDED_OVER


def wrong_tries_counted(db: Database, order_id: uuid.UUID) -> int:
    with db.reader() as s:
        return s.scalar(
            select(func.count())
            .select_from(AuthFailure)
            .where(AuthFailure.kind == pickup.THROTTLE_KIND, AuthFailure.subject == str(order_id))
        )


def status_of(db: Database, order_id: uuid.UUID) -> OrderStatus:
    with db.reader() as s:
        return s.scalars(select(Order.status).where(Order.id == order_id)).one()


@on_postgres
def test_thirty_two_wrong_codes_at_once_lock_the_order_after_exactly_five(
    pg: Database, gateway: SandboxPaymentGateway
) -> None:
    waiting = waiting_pickup(pg, gateway, "PKWRONG")
    answers = all_at_once(CLIENTS, lambda i: try_code(pg, waiting, waiting.wrong_code(i), client=i))
    assert Counter(answers) == {422: 5, 429: CLIENTS - 5}
    assert wrong_tries_counted(pg, waiting.order_id) == 5
    assert try_code(pg, waiting, waiting.code) == 429  # the right code, after the lock
    assert status_of(pg, waiting.order_id) is OrderStatus.READY_FOR_PICKUP


@on_postgres
def test_a_right_code_racing_thirty_one_wrong_ones_is_one_of_at_most_five_codes_judged(
    pg: Database, gateway: SandboxPaymentGateway
) -> None:
    waiting = waiting_pickup(pg, gateway, "PKMIXED")
    right = CLIENTS // 2

    def one_try(i: int) -> int:
        code = waiting.code if i == right else waiting.wrong_code(i)
        return try_code(pg, waiting, code, client=i)

    answers = Counter(all_at_once(CLIENTS, one_try))
    judged = answers[422] + answers[HANDED_OVER]
    assert judged <= 5, answers
    assert answers[422] == wrong_tries_counted(pg, waiting.order_id)
    if answers[HANDED_OVER]:  # judged among the first five: handed over once, the rest too late
        assert answers == {HANDED_OVER: 1, 422: judged - 1, 409: CLIENTS - judged}
        assert status_of(pg, waiting.order_id) is OrderStatus.COMPLETED
        assert stock_of(pg, waiting.store_id, waiting.sku_id) == (8, 0)
    else:  # five wrong codes came first: the right one met the lock like the rest
        assert answers == {422: 5, 429: CLIENTS - 5}
        assert status_of(pg, waiting.order_id) is OrderStatus.READY_FOR_PICKUP
        assert stock_of(pg, waiting.store_id, waiting.sku_id) == (10, 2)


@on_postgres
def test_a_right_code_waiting_for_the_fifth_wrong_try_is_refused_once_that_try_is_counted(
    pg: Database, gateway: SandboxPaymentGateway
) -> None:
    waiting = waiting_pickup(pg, gateway, "PKWAIT")
    assert [try_code(pg, waiting, waiting.wrong_code(i)) for i in range(4)] == [422] * 4
    with pg.writer() as fifth, ThreadPoolExecutor(1) as counter:
        with pytest.raises(WrongPickupCode):
            pickup.hand_over_pickup(
                fifth,
                clerk=waiting.clerk,
                client_ip="10.9.9.9",
                settings=SETTINGS,
                order_ref=waiting.number,
                code=waiting.wrong_code(4),
            )
        # The fifth wrong try holds the order's row, its count not yet committed.
        own_pid = fifth.execute(text("SELECT pg_backend_pid()")).scalar_one()
        right = counter.submit(try_code, pg, waiting, waiting.code)
        until_another_backend_waits_for_a_lock(pg, own_pid)
        fifth.commit()  # as the endpoint answers the 422
        assert right.result(timeout=30) == 429
    assert wrong_tries_counted(pg, waiting.order_id) == 5
    assert status_of(pg, waiting.order_id) is OrderStatus.READY_FOR_PICKUP


def test_on_a_sqlite_file_many_writers_lock_the_order_after_exactly_five_and_never_deadlock(
    sqlite_file: Database, gateway: SandboxPaymentGateway
) -> None:
    """The wrong try is written by the transaction that judged it, on its own connection: on
    SQLite that writer already holds the database's one write lock, so nothing waits on it."""
    waiting = waiting_pickup(sqlite_file, gateway, "PKLITE")
    clients = 12
    answers = all_at_once(
        clients, lambda i: try_code(sqlite_file, waiting, waiting.wrong_code(i), client=i)
    )
    assert Counter(answers) == {422: 5, 429: clients - 5}
    assert wrong_tries_counted(sqlite_file, waiting.order_id) == 5
    assert try_code(sqlite_file, waiting, waiting.code) == 429
