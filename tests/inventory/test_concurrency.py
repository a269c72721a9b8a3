"""On PostgreSQL, 64 racing clients (threads and processes) never oversell and never deadlock.

Every client runs each use case in its own transaction, as an API request would, through a
pool of ``CONNECTIONS`` connections (48 by default, as many as an API process holds, so that
two test workers' races fit in the server's default 100 connections; set
ZHONGTAI_TEST_RACE_CONNECTIONS=64 on a server with room for one connection per client).
Only ``insufficient-stock`` may come back: any other error (a deadlock, a serialization
failure) fails the test. After each race the ledger verifies.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.pg import temporary_database
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core import migrate
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict
from zhongtai.core.outbox import OutboxEvent
from zhongtai.inventory import service
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.models import StockBalance
from zhongtai.inventory.reservation_desk import ReservationDesk
from zhongtai.stores.models import Location, LocationKind

pytestmark = [pytest.mark.postgres_only, pytest.mark.xdist_group("postgres_many_connections")]
CLIENTS = 64
PROCESSES = 4
CONNECTIONS = int(os.environ.get("ZHONGTAI_TEST_RACE_CONNECTIONS", "48"))
TTL = timedelta(minutes=10)
_seq = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with temporary_database("zt_stock_race") as url:
        migrate.upgrade(url)
        database = Database.connect(url, pool_size=CONNECTIONS + 1, max_overflow=0)
        yield database
        database.dispose()


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
        store = Location(
            code=f"RACE{n}",
            name="抢购店",
            kind=LocationKind.STORE,
            region="静安区",
            city="上海",
            address="1 号",
            latitude=31.2,
            longitude=121.4,
            timezone="Asia/Shanghai",
        )
        s.add(store)
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


def _race(clients: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for every client at once (released together by a barrier)."""
    barrier = threading.Barrier(clients)

    def run(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(run, range(clients)))


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

    held = sum(_race(CLIENTS, client))
    assert held == 50
    assert _balances(db, store_id)[sku] == (50, 50)
    assert _verified(db) == []


def _process_client(url: str, store_id: str, sku_id: str, tag: int, barrier: Any, out: Any) -> None:
    database = Database.connect(url, pool_size=CONNECTIONS // PROCESSES, max_overflow=0)
    open_connections(database, CONNECTIONS // PROCESSES)
    threads = CLIENTS // PROCESSES
    inner = threading.Barrier(threads)
    results: list[int] = []
    errors: list[str] = []

    def client(i: int) -> None:
        inner.wait()
        try:
            for k in range(3):
                ok = _try_reserve(
                    database,
                    f"proc-{tag}-{i}-{k}",
                    uuid.UUID(store_id),
                    [service.Line(uuid.UUID(sku_id), 1)],
                )
                results.append(int(ok))
        except Exception as e:  # reported to the parent, which fails the test with it
            errors.append(f"{type(e).__name__}: {e}")

    barrier.wait()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    database.dispose()
    out.put((sum(results), errors))


def test_64_clients_in_4_processes_racing_for_one_hot_sku_never_oversell(db: Database) -> None:
    store_id, [sku] = _setup(db, skus=1, on_hand=70)
    db.dispose()  # the processes bring connections of their own
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=_process_client, args=(db.url, str(store_id), str(sku), p, barrier, out))
        for p in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    reports = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
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

    held = [basket for won in _race(CLIENTS, client) for basket in won]
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
        outcomes = _race(CLIENTS, client)
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

    outcome = Counter(_race(CLIENTS, client))
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

        held = sum(_race(CLIENTS, client))
    assert held == 50
    assert _balances(db, store_id)[sku] == (50, 50)
    assert _reserved_events(db, store_id) == (50, 1)
    assert _verified(db) == []


def _desk_process_client(
    url: str, store_id: str, sku_ids: list[str], tag: int, barrier: Any, out: Any
) -> None:
    """16 threads of one process through its own desk; every other one reserves directly."""
    database = Database.connect(url, pool_size=CONNECTIONS // PROCESSES, max_overflow=0)
    open_connections(database, CONNECTIONS // PROCESSES)
    threads = CLIENTS // PROCESSES
    inner = threading.Barrier(threads)
    held: list[list[tuple[str, int]]] = []
    errors: list[str] = []
    with ReservationDesk(database, workers=2) as desk:

        def client(i: int) -> None:
            rng = random.Random(f"{tag}-{i}")
            inner.wait()
            try:
                for k in range(3):
                    basket = [
                        service.Line(uuid.UUID(s), rng.randint(1, 2))
                        for s in rng.sample(sku_ids, rng.randint(1, len(sku_ids)))
                    ]
                    reference = f"mixed-{tag}-{i}-{k}"
                    if i % 2:
                        ok = _try_reserve(database, reference, uuid.UUID(store_id), basket)
                    else:
                        ok = _try_desk(desk, reference, uuid.UUID(store_id), basket)
                    if ok:
                        held.append([(str(x.sku_id), x.quantity) for x in basket])
            except Exception as e:  # reported to the parent, which fails the test with it
                errors.append(f"{type(e).__name__}: {e}")

        barrier.wait()
        workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    database.dispose()
    out.put((held, errors))


def test_desks_in_4_processes_and_direct_reserves_share_baskets_without_oversell_or_deadlock(
    db: Database,
) -> None:
    store_id, skus = _setup(db, skus=4, on_hand=40)
    db.dispose()  # the processes bring connections of their own
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
    args = (db.url, str(store_id), [str(s) for s in skus])
    procs = [
        ctx.Process(target=_desk_process_client, args=(*args, p, barrier, out))
        for p in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    reports = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
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
