"""On PostgreSQL, 64 racing clients (threads and processes) never oversell and never deadlock.

Every client runs each use case in its own transaction, as an API request would, through a
pool of ``CONNECTIONS`` connections (48 by default, as many as an API process holds, so that
two test workers' races fit in the server's default 100 connections; set
ZHONGTAI_TEST_RACE_CONNECTIONS=64 on a server with room for one connection per client).
Only ``insufficient-stock`` may come back: any other error (a deadlock, a serialization
failure) fails the test. After each race the ledger verifies.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.factories import Factory
from tests.races import MANY_CONNECTIONS, all_at_once, processes_at_once, race_database
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict
from zhongtai.core.jobs import run_job_once
from zhongtai.core.outbox import OutboxEvent
from zhongtai.inventory import service
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.models import StockBalance
from zhongtai.inventory.reservation_desk import ReservationDesk
from zhongtai.inventory.reservations import SWEEP_BATCH, reservation_sweeper

pytestmark = MANY_CONNECTIONS
CLIENTS = 64
PROCESSES = 4
CONNECTIONS = int(os.environ.get("ZHONGTAI_TEST_RACE_CONNECTIONS", "48"))
TTL = timedelta(minutes=10)
_seq = iter(range(1, 1_000_000))
Outcome = TypeVar("Outcome")


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with race_database("zt_stock_race", pool_size=CONNECTIONS + 1) as database:
        yield database


def open_connections(db: Database, count: int, *, patience_s: float = 120) -> None:
    """Open ``count`` pooled connections before a race, so that no client connects during it.

    The server is shared (other test workers, other runs): while it has no room for all of
    them, wait for the others to finish rather than fail a client mid-race.
    """
    deadline = time.monotonic() + patience_s
    while True:
        held: list[Any] = []
        try:
            for _ in range(count):
                held.append(db.engine.connect())
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
        finally:
            for conn in held:
                conn.close()
        db.dispose()
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def _hand_back_connections(db: Database) -> Iterator[None]:
    """Each race holds its connections (and the sweeper's): open them first, close them after."""
    db.dispose()
    open_connections(db, CONNECTIONS + 1)
    yield
    db.dispose()


def _setup(db: Database, skus: int, on_hand: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A fresh store with ``skus`` SKUs of ``on_hand`` units each."""
    n = next(_seq)
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        category = catalog.create_category(s, code=f"RACE{n}", name="race", parent_id=None)
        product = catalog.create_product(
            s,
            code=f"RACE{n}",
            name="热卖",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[
                catalog.NewSku(code=f"RACE{n}-{i}", name=f"{i}", base_price=100)
                for i in range(skus)
            ],
        )
        sku_ids = [sku.id for sku in product.skus]
        service.receive_stock(s, store.id, [service.ReceiptLine(i, on_hand) for i in sku_ids])
        return store.id, sku_ids


def _balances(db: Database, store_id: uuid.UUID) -> dict[uuid.UUID, tuple[int, int]]:
    with db.reader() as s:
        rows = s.query(StockBalance).filter(StockBalance.location_id == store_id).all()
        return {r.sku_id: (r.on_hand, r.reserved) for r in rows}


def _verified(db: Database) -> list[service.Difference]:
    with db.reader() as s:
        return service.verify_stock(s)


def _try_reserve(
    db: Database, reference: str, store_id: uuid.UUID, lines: list[service.Line]
) -> bool:
    """True when held; False on insufficient-stock; anything else propagates and fails."""
    try:
        with db.writer() as s, s.begin():
            service.reserve(s, reference, store_id, lines, TTL)
        return True
    except InsufficientStock:
        return False


def test_64_threads_racing_for_the_last_units_of_a_hot_sku_hold_exactly_what_there_is(
    db: Database,
) -> None:
    store_id, [sku] = _setup(db, skus=1, on_hand=50)

    def client(i: int) -> int:
        return sum(
            _try_reserve(db, f"hot-{i}-{k}", store_id, [service.Line(sku, 1)]) for k in range(3)
        )

    held = sum(all_at_once(CLIENTS, client))
    assert held == 50
    assert _balances(db, store_id)[sku] == (50, 50)
    assert _verified(db) == []


def _process_client(url: str, store_id: str, sku_id: str, tag: int, barrier: Any, out: Any) -> None:
    """16 clients of one process, 3 single units each: reports (units held, errors)."""
    database = Database.connect(url, pool_size=CONNECTIONS // PROCESSES, max_overflow=0)
    open_connections(database, CONNECTIONS // PROCESSES)

    def client(i: int) -> int:
        line = service.Line(uuid.UUID(sku_id), 1)
        return sum(
            _try_reserve(database, f"proc-{tag}-{i}-{k}", uuid.UUID(store_id), [line])
            for k in range(3)
        )

    barrier.wait()
    out.put(_reported(lambda: sum(all_at_once(CLIENTS // PROCESSES, client)), 0))
    database.dispose()


def _reported(race: Callable[[], Outcome], nothing: Outcome) -> tuple[Outcome, list[str]]:
    """What a process's race came to, or the error that ended it, for the parent to assert on
    (an exception does not cross the process boundary by itself)."""
    try:
        return race(), []
    except Exception as e:  # reported to the parent, which fails the test with it
        return nothing, [f"{type(e).__name__}: {e}"]


def test_64_clients_in_4_processes_racing_for_one_hot_sku_never_oversell(db: Database) -> None:
    store_id, [sku] = _setup(db, skus=1, on_hand=70)
    db.dispose()  # the processes bring connections of their own
    reports = processes_at_once(PROCESSES, _process_client, db.url, str(store_id), str(sku))
    assert [e for _, errors in reports for e in errors] == []
    assert sum(held for held, _ in reports) == 70
    assert _balances(db, store_id)[sku] == (70, 70)
    assert _verified(db) == []


def test_overlapping_baskets_in_random_line_orders_are_all_or_nothing_without_deadlock(
    db: Database,
) -> None:
    store_id, skus = _setup(db, skus=8, on_hand=25)
    rng = random.Random(4)
    baskets = [
        [service.Line(sku, rng.randint(1, 2)) for sku in rng.sample(skus, rng.randint(2, 5))]
        for _ in range(CLIENTS * 3)
    ]

    def client(i: int) -> list[list[service.Line]]:
        mine = baskets[i * 3 : i * 3 + 3]
        return [b for k, b in enumerate(mine) if _try_reserve(db, f"basket-{i}-{k}", store_id, b)]

    held = [basket for won in all_at_once(CLIENTS, client) for basket in won]
    expected: Counter[uuid.UUID] = Counter()
    for basket in held:
        for x in basket:
            expected[x.sku_id] += x.quantity
    balances = _balances(db, store_id)
    assert {sku: balances[sku][1] for sku in skus} == {sku: expected[sku] for sku in skus}
    assert all(reserved <= on_hand for on_hand, reserved in balances.values())
    assert max(expected.values()) >= 24, "the race did not exhaust any SKU; make it harder"
    assert _verified(db) == []


def test_confirms_releases_and_the_sweeper_racing_on_shared_skus_keep_the_ledger_exact(
    db: Database,
) -> None:
    store_id, skus = _setup(db, skus=6, on_hand=40)
    future = utcnow() + timedelta(days=1)
    stop = threading.Event()
    sweeps: list[int] = []

    def sweeper() -> None:
        while not stop.is_set():
            with db.writer() as s, s.begin():
                sweeps.append(service.expire_reservations(s, future))

    def client(i: int) -> Counter[str]:
        rng = random.Random(i)
        outcome: Counter[str] = Counter()
        for k in range(4):
            basket = [service.Line(sku, 1) for sku in rng.sample(skus, rng.randint(1, 4))]
            reference = f"settle-{i}-{k}"
            if not _try_reserve(db, reference, store_id, basket):
                outcome["short"] += 1
                continue
            try:
                with db.writer() as s, s.begin():
                    reservation = s.scalars(
                        service.select_reservation_by_reference(reference)
                    ).one()
                    if rng.random() < 0.5:
                        result = service.confirm_reservation(s, reservation.id)
                    else:
                        result = service.release_reservation(s, reservation.id)
                    outcome[result.status.value] += 1
            except Conflict as late:  # the sweeper expired it first: the one legal refusal
                assert late.extra["status_now"] == "expired"
                outcome["expired"] += 1
        return outcome

    sweep = threading.Thread(target=sweeper)
    sweep.start()
    try:
        outcomes = all_at_once(CLIENTS, client)
    finally:
        stop.set()
        sweep.join()
    total = sum(outcomes, Counter())
    assert total["confirmed"] > 0 and total["released"] + total["expired"] > 0
    assert _verified(db) == []
    with db.writer() as s, s.begin():
        service.expire_reservations(s, future)
    assert all(reserved == 0 for _, reserved in _balances(db, store_id).values())
    assert _verified(db) == []


def test_the_sweeper_working_off_a_backlog_of_batches_never_deadlocks_with_checkouts(
    db: Database,
) -> None:
    """Expired holds over several batches, the later batches on rows that come first in lock
    order, released while checkouts lock rows of every batch (in (location, SKU) order): were
    two batches one transaction, a checkout holding a low row and waiting for a high one held
    since the first batch would deadlock with the sweeper reaching for its low row."""
    store_id, skus = _setup(db, skus=24, on_hand=10_000)
    thirds = [sorted(skus)[i * 8 : i * 8 + 8] for i in range(3)]
    rng = random.Random(9)
    past = utcnow() - TTL * 2
    with db.writer() as s, s.begin():
        for batch, third in enumerate(reversed(thirds)):  # oldest holds on the highest rows
            for k in range(SWEEP_BATCH):
                lines = [service.Line(sku, 1) for sku in rng.sample(third, 2)]
                service.reserve(s, f"backlog-{batch}-{k}", store_id, lines, TTL, now=past)
    swept: list[int] = []
    go = threading.Event()

    def sweeper() -> None:
        go.wait()
        swept.append(run_job_once(db, reservation_sweeper(0)))

    def client(i: int) -> int:
        mine = random.Random(i)
        if i == 0:
            go.set()
        held = 0
        for k in range(6):
            basket = [service.Line(mine.choice(third), 1) for third in thirds]
            held += _try_reserve(db, f"while-sweeping-{i}-{k}", store_id, basket)
        return held

    sweep = threading.Thread(target=sweeper)
    sweep.start()
    try:
        held = sum(all_at_once(CLIENTS // 2, client))
    finally:
        go.set()
        sweep.join()
    assert swept == [SWEEP_BATCH * 3]
    assert held == CLIENTS // 2 * 6
    assert sum(reserved for _, reserved in _balances(db, store_id).values()) == held * 3
    assert _verified(db) == []


def test_pos_sales_racing_reservations_on_one_row_are_never_refused_and_the_ledger_verifies(
    db: Database,
) -> None:
    store_id, [sku] = _setup(db, skus=1, on_hand=40)

    def client(i: int) -> str:
        if i % 2:
            with db.writer() as s, s.begin():
                service.record_pos_sale(s, store_id, [service.Line(sku, 1)], reference=f"till-{i}")
            return "sold"
        return (
            "held" if _try_reserve(db, f"mixed-{i}", store_id, [service.Line(sku, 1)]) else "short"
        )

    outcome = Counter(all_at_once(CLIENTS, client))
    assert outcome["sold"] == CLIENTS // 2
    on_hand, reserved = _balances(db, store_id)[sku]
    assert on_hand == 40 - CLIENTS // 2
    assert reserved == outcome["held"] <= 40
    assert _verified(db) == []


# --- through the reservation desk: concurrent baskets held in batches --------------------------


def _try_desk(
    desk: ReservationDesk, reference: str, store_id: uuid.UUID, lines: list[service.Line]
) -> bool:
    """True when held; False on insufficient-stock; anything else propagates and fails."""
    try:
        desk.reserve(reference, store_id, lines, TTL)
        return True
    except InsufficientStock:
        return False


def _reserved_events(db: Database, store_id: uuid.UUID) -> tuple[int, int]:
    """Units announced as reserved at the store, and how many stock.out events."""
    with db.reader() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.store_id == store_id)).all()
    reserved = sum(
        e.payload["quantity"]
        for e in events
        if e.type == "stock.changed" and e.payload["cause"] == "reserved"
    )
    return reserved, sum(e.type == "stock.out" for e in events)


def test_64_threads_through_one_desk_hold_exactly_the_last_units_and_announce_them(
    db: Database,
) -> None:
    store_id, [sku] = _setup(db, skus=1, on_hand=50)
    with ReservationDesk(db, workers=2) as desk:

        def client(i: int) -> int:
            return sum(
                _try_desk(desk, f"desk-{i}-{k}", store_id, [service.Line(sku, 1)]) for k in range(3)
            )

        held = sum(all_at_once(CLIENTS, client))
    assert held == 50
    assert _balances(db, store_id)[sku] == (50, 50)
    assert _reserved_events(db, store_id) == (50, 1)
    assert _verified(db) == []


def test_64_coroutines_and_64_threads_through_one_desk_hold_exactly_the_last_units(
    db: Database,
) -> None:
    """Coroutines (as the HTTP route waits) and threads share one desk and its batches."""
    store_id, [sku] = _setup(db, skus=1, on_hand=100)

    async def coroutines() -> int:
        async def shopper(i: int) -> int:
            held = 0
            for k in range(3):
                try:
                    await desk.reserve_async(f"coro-{i}-{k}", store_id, [service.Line(sku, 1)], TTL)
                    held += 1
                except InsufficientStock:
                    pass
            return held

        return sum(await asyncio.gather(*(shopper(i) for i in range(CLIENTS))))

    with ReservationDesk(db, workers=2) as desk:
        on_loop: list[int] = []
        loop = threading.Thread(target=lambda: on_loop.append(asyncio.run(coroutines())))
        loop.start()

        def client(i: int) -> int:
            return sum(
                _try_desk(desk, f"thread-{i}-{k}", store_id, [service.Line(sku, 1)])
                for k in range(3)
            )

        by_threads = sum(all_at_once(CLIENTS, client))
        loop.join()
    assert on_loop and on_loop[0] + by_threads == 100
    assert _balances(db, store_id)[sku] == (100, 100)
    assert _reserved_events(db, store_id) == (100, 1)
    assert _verified(db) == []


def _desk_process_client(
    url: str, store_id: str, sku_ids: list[str], tag: int, barrier: Any, out: Any
) -> None:
    """16 clients of one process through its own desk; every other one reserves directly.
    Reports (the baskets held, as (sku, quantity) pairs; errors)."""
    database = Database.connect(url, pool_size=CONNECTIONS // PROCESSES, max_overflow=0)
    open_connections(database, CONNECTIONS // PROCESSES)
    store = uuid.UUID(store_id)

    def client(desk: ReservationDesk, i: int) -> list[list[tuple[str, int]]]:
        rng = random.Random(f"{tag}-{i}")
        held = []
        for k in range(3):
            basket = [
                service.Line(uuid.UUID(s), rng.randint(1, 2))
                for s in rng.sample(sku_ids, rng.randint(1, len(sku_ids)))
            ]
            reference = f"mixed-{tag}-{i}-{k}"
            if i % 2:
                ok = _try_reserve(database, reference, store, basket)
            else:
                ok = _try_desk(desk, reference, store, basket)
            if ok:
                held.append([(str(x.sku_id), x.quantity) for x in basket])
        return held

    def race() -> list[list[tuple[str, int]]]:
        with ReservationDesk(database, workers=2) as desk:
            barrier.wait()
            won = all_at_once(CLIENTS // PROCESSES, lambda i: client(desk, i))
        return [basket for baskets in won for basket in baskets]

    out.put(_reported(race, []))
    database.dispose()


def test_desks_in_4_processes_and_direct_reserves_share_baskets_without_oversell_or_deadlock(
    db: Database,
) -> None:
    store_id, skus = _setup(db, skus=4, on_hand=40)
    db.dispose()  # the processes bring connections of their own
    sku_ids = [str(s) for s in skus]
    reports = processes_at_once(PROCESSES, _desk_process_client, db.url, str(store_id), sku_ids)
    assert [e for _, errors in reports for e in errors] == []
    expected: Counter[uuid.UUID] = Counter()
    for baskets, _ in reports:
        for basket in baskets:
            for sku, quantity in basket:
                expected[uuid.UUID(sku)] += quantity
    balances = _balances(db, store_id)
    assert {sku: balances[sku][1] for sku in skus} == {sku: expected[sku] for sku in skus}
    assert max(expected.values()) >= 39, "the race did not exhaust any SKU; make it harder"
    assert _reserved_events(db, store_id)[0] == sum(expected.values())
    assert _verified(db) == []
