"""bench/run inventory: 64 clients reserving stock against pgbench, and ATP for an address.

On a PostgreSQL database of its own (schema by ``migrate.upgrade``, rows inserted directly):

- ``pgbench`` runs the reservation's conditional UPDATE alone at 64 clients, on one hot row and
  on 10,000 spread rows: the baseline of what the database does with that statement.
- 64 clients reserve for the same time on the same rows (one single-line basket per call, a
  unique reference each), in five setups: calling ``reserve`` in a transaction each
  (``direct``) or handing baskets to their process's ``ReservationDesk`` (``desk``), as 64
  threads of one process or as 4 processes x 16 threads, and 64 coroutines of one event loop
  awaiting the desk. The headline is the best setup.
- wrk posts the same baskets to ``POST /api/v1/inventory/reservations`` of ``zhongtai serve``
  (1 and 2 worker processes) over 64 connections.
- Afterwards no balance may hold more than it has, and ``verify_stock`` must be clean.
- ``stores_with_basket`` is timed in-process for a 5-line basket at many random addresses over
  500 stores in a ~40 km box.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bench import harness
from zhongtai.catalog.models import Category, Product, ProductKind, SaleUnit, Sku
from zhongtai.core import migrate
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.ids import new_id
from zhongtai.inventory import service
from zhongtai.inventory.availability import stores_with_basket
from zhongtai.inventory.errors import InsufficientStock
from zhongtai.inventory.ledger import BALANCES, MOVEMENTS
from zhongtai.inventory.models import MovementKind
from zhongtai.inventory.reservation_desk import ReservationDesk
from zhongtai.inventory.rules import Line
from zhongtai.stores.models import (
    Capability,
    Location,
    LocationCapability,
    LocationKind,
    LocationStatus,
)

CLIENTS = 64
SPREAD_ROWS = 10_000
CATALOG_SKUS = 20_000
# Kept below 21,474,836: availability multiplies ATP by a share percent in int4, and larger
# ATPs make stores_with_basket fail with "integer out of range" (a finding of this benchmark).
HOT_ON_HAND = 1_000_000
SPREAD_ON_HAND = 100_000
TTL = timedelta(hours=1)
CENTRE = (31.23, 121.47)  # Shanghai
BOX_KM = 40.0
BASKET_LINES = 5
CHUNK = 20_000

HOT_SCRIPT = """\
UPDATE stock_balances SET reserved = reserved + 1
 WHERE location_id = '%(location)s' AND sku_id = '%(sku)s'
   AND on_hand - reserved - safety_stock >= 1;
"""
# pgbench cannot pick a UUID at random: \set picks a row number, a lookup table maps it.
SPREAD_SCRIPT = """\
\\set n random(1, %(rows)d)
UPDATE stock_balances SET reserved = reserved + 1
 FROM bench_spread_rows r
 WHERE r.n = :n AND stock_balances.location_id = r.location_id
   AND stock_balances.sku_id = r.sku_id
   AND on_hand - reserved - safety_stock >= 1;
"""


def _insert(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[i : i + CHUNK])


def _location(code: str, lat: float, lng: float) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id(),
        "code": code,
        "name": code,
        "kind": LocationKind.STORE,
        "status": LocationStatus.ACTIVE,
        "region": "浦东新区",
        "city": "上海",
        "address": "1 号",
        "latitude": lat,
        "longitude": lng,
        "timezone": "Asia/Shanghai",
        "created_at": now,
        "updated_at": now,
    }


def _seed_catalog(engine: Engine) -> list[uuid.UUID]:
    now = utcnow()
    category = {"id": new_id(), "code": "BENCH", "name": "bench", "created_at": now}
    category["updated_at"] = now
    _insert(engine, Category.__table__, [category])
    products, skus = [], []
    for i in range(CATALOG_SKUS):
        pid = new_id()
        products.append(
            {
                "id": pid,
                "code": f"P{i:05d}",
                "name": f"商品 {i}",
                "category_id": category["id"],
                "kind": ProductKind.STANDARD,
                "unit": SaleUnit.PIECE,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        skus.append(
            {
                "id": new_id(),
                "code": f"S{i:05d}",
                "product_id": pid,
                "name": f"商品 {i}",
                "attributes": {},
                "base_price": 100 + i % 900,
                "currency": "CNY",
                "price_per": 1,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    _insert(engine, Product.__table__, products)
    _insert(engine, Sku.__table__, skus)
    return [s["id"] for s in skus]


def _balance(location_id: uuid.UUID, sku_id: uuid.UUID, on_hand: int, safety: int = 0) -> dict:
    return {
        "location_id": location_id,
        "sku_id": sku_id,
        "on_hand": on_hand,
        "reserved": 0,
        "safety_stock": safety,
        "in_transit": 0,
        "low_stock_level": 0,
        "updated_at": utcnow(),
    }


def _seed_reservation_store(
    engine: Engine, skus: list[uuid.UUID]
) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    """One store: a hot SKU and SPREAD_ROWS others, each with a receipt in the ledger."""
    # Far outside the ATP box, so that the ATP queries never meet this store.
    store = _location("RESV", CENTRE[0] + 3, CENTRE[1] - 3)
    _insert(engine, Location.__table__, [store])
    hot, spread = skus[0], skus[1 : SPREAD_ROWS + 1]
    balances = [_balance(store["id"], hot, HOT_ON_HAND)]
    balances += [_balance(store["id"], s, SPREAD_ON_HAND, safety=2) for s in spread]
    _insert(engine, BALANCES, balances)
    now = utcnow()
    _insert(
        engine,
        MOVEMENTS,
        [
            {
                "id": new_id(),
                "location_id": b["location_id"],
                "sku_id": b["sku_id"],
                "kind": MovementKind.RECEIPT,
                "quantity": b["on_hand"],
                "on_hand_after": b["on_hand"],
                "reference_type": "bench",
                "reference_id": "seed",
                "occurred_at": now,
            }
            for b in balances
        ],
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE bench_spread_rows (n int PRIMARY KEY, location_id uuid, sku_id uuid)"
            )
        )
        conn.execute(
            text("INSERT INTO bench_spread_rows VALUES (:n, :l, :s)"),
            [{"n": i + 1, "l": store["id"], "s": s} for i, s in enumerate(spread)],
        )
        conn.execute(text("ANALYZE"))
    return store["id"], hot, spread


def _oversold(engine: Engine) -> int:
    b = BALANCES.c
    with engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(BALANCES)
                .where(b.reserved > b.on_hand - b.safety_stock)
            )
            or 0
        )


def _vacuum(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def _pgbench(url: str, script: str, seconds: int) -> float:
    u = make_url(url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reserve.sql"
        path.write_text(script)
        cmd = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(CLIENTS),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            str(path),
            "-h",
            u.host or "127.0.0.1",
            "-p",
            str(u.port or 5432),
            "-U",
            u.username or "postgres",
            u.database or "",
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if failed and int(failed.group(1)):
        raise RuntimeError(f"pgbench transactions failed:\n{out}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if not tps:
        raise RuntimeError(f"cannot read pgbench's tps:\n{out}")
    return float(tps.group(1))


PROCESSES = 4
# (mode, processes, shape): how the 64 clients call the service.
SETUPS = (
    ("direct", 1, "threads"),
    ("direct", PROCESSES, "processes"),
    ("desk", 1, "threads"),
    ("desk", PROCESSES, "processes"),
    ("desk", 1, "coroutines"),
)
HTTP_WORKERS = (1, 2)
DESK_WORKERS = int(os.environ.get("BENCH_DESK_WORKERS", "2"))


def _reserver(db: Database, mode: str) -> tuple[Callable[..., Any], Callable[[], None]]:
    """The reserve call of a mode, and how to stop it: ``direct`` runs the service in a
    transaction of the client's own; ``desk`` hands the basket to the process's desk."""
    if mode == "desk":
        desk = ReservationDesk(db, workers=DESK_WORKERS)
        return desk.reserve, desk.close

    def direct(reference: str, store_id: uuid.UUID, lines: list[Line], ttl: timedelta) -> None:
        with db.writer() as s, s.begin():
            service.reserve(s, reference, store_id, lines, ttl)

    return direct, lambda: None


def _clients(
    url: str,
    mode: str,
    store_id: uuid.UUID,
    skus: list[uuid.UUID],
    seconds: float,
    tag: str,
    clients: int,
) -> tuple[float, int]:
    """Reservations held per second by ``clients`` threads of this process; and how many were
    short. Each client has its own connection (direct) or shares the process's desk."""
    connections = clients if mode == "direct" else DESK_WORKERS
    db = Database.connect(url, pool_size=connections, max_overflow=0)
    _open_connections(db, connections)
    reserve, close = _reserver(db, mode)
    held = [0] * clients
    short = [0] * clients
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(i: int) -> None:
        rng = random.Random(f"{tag}-{i}")
        with db.writer() as warm:  # open the connections before the clock starts
            warm.execute(text("SELECT 1"))
        barrier.wait()
        k = 0
        try:
            while not stop.is_set():
                sku = skus[0] if len(skus) == 1 else rng.choice(skus)
                k += 1
                try:
                    reserve(f"bench-{tag}-{i}-{k}", store_id, [Line(sku, 1)], TTL)
                    held[i] += 1
                except InsufficientStock:
                    short[i] += 1
        except BaseException as e:  # reported by the main thread, which fails the run
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    close()
    db.dispose()
    if errors:
        raise RuntimeError(f"{len(errors)} service clients failed; first: {errors[0]!r}")
    return sum(held) / elapsed, sum(short)


def _open_connections(db: Database, count: int, *, patience_s: float = 180) -> None:
    """Open the pool's connections before the clock starts; while the server (shared with
    other work) has no room for them, wait rather than fail a client mid-run."""
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


def _process_clients(args: tuple[Any, ...], start: Any, out: Any) -> None:
    start.wait()
    try:
        out.put(_clients(*args))
    except BaseException as e:  # the parent fails the run with it
        out.put(e)


def _service_run(
    url: str,
    mode: str,
    processes: int,
    store_id: uuid.UUID,
    skus: list[uuid.UUID],
    seconds: float,
    tag: str,
) -> tuple[float, int]:
    """64 clients in ``processes`` processes (1: threads of this one) reserving for ``seconds``."""
    if processes == 1:
        return _clients(url, mode, store_id, skus, seconds, tag, CLIENTS)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_clients,
            args=(
                (url, mode, store_id, skus, seconds, f"{tag}-p{n}", CLIENTS // processes),
                start,
                out,
            ),
        )
        for n in range(processes)
    ]
    for p in procs:
        p.start()
    reports = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    failed = [r for r in reports if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"a client process failed: {failed[0]!r}")
    return sum(rate for rate, _ in reports), sum(missed for _, missed in reports)


def _coroutine_clients(
    url: str, store_id: uuid.UUID, skus: list[uuid.UUID], seconds: float, tag: str
) -> tuple[float, int]:
    """Reservations held per second by CLIENTS coroutines of one event loop awaiting the
    process's desk (as the HTTP route does); and how many were short."""
    db = Database.connect(url, pool_size=DESK_WORKERS, max_overflow=0)
    _open_connections(db, DESK_WORKERS)
    desk = ReservationDesk(db, workers=DESK_WORKERS)
    held = [0] * CLIENTS
    short = [0] * CLIENTS

    async def client(i: int, go: asyncio.Event, stop: asyncio.Event) -> None:
        rng = random.Random(f"{tag}-{i}")
        await go.wait()
        k = 0
        while not stop.is_set():
            sku = skus[0] if len(skus) == 1 else rng.choice(skus)
            k += 1
            try:
                await desk.reserve_async(f"bench-{tag}-{i}-{k}", store_id, [Line(sku, 1)], TTL)
                held[i] += 1
            except InsufficientStock:
                short[i] += 1

    async def race() -> float:
        go, stop = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(client(i, go, stop)) for i in range(CLIENTS)]
        await asyncio.sleep(0)  # every client waits at the start
        start = time.perf_counter()
        go.set()
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        return time.perf_counter() - start

    try:
        elapsed = asyncio.run(race())
    finally:
        desk.close()
        db.dispose()
    return sum(held) / elapsed, sum(short)


RESERVE_LUA = """
local skus = {%(skus)s}
local counter = 0
local body = '{"reference":"%%s-%%d-%%d","location_id":"%(location)s",' ..
             '"lines":[{"sku_id":"%%s","quantity":1}],"ttl_seconds":3600}'
wrk.method = "POST"
wrk.headers["X-API-Key"] = "%(key)s"
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  math.randomseed(tid * 7919)
end
request = function()
  counter = counter + 1
  local sku = skus[math.random(#skus)]
  return wrk.format(nil, nil, nil, string.format(body, "%(tag)s", tid, counter, sku))
end
"""


def _bench_key(url: str, store_id: uuid.UUID) -> str:
    """A till's API key of the bench store (a POS key may hold stock at its own store)."""
    db = Database.connect(url, pool_size=1, max_overflow=0)
    try:
        with db.writer() as s, s.begin():
            issued = auth.create_api_key(
                s, name="bench till", channel=Channel.POS, store_id=store_id, terminal_id="BENCH"
            )
    finally:
        db.dispose()
    return issued.full_key


def _http_run(
    url: str,
    key: str,
    store_id: uuid.UUID,
    skus: list[uuid.UUID],
    seconds: int,
    workers: int,
    tag: str,
) -> harness.WrkResult:
    """wrk with CLIENTS connections posting one-line reservations (unique references) to
    ``zhongtai serve`` with ``workers`` processes; every answer must be 201."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "reserve.lua"
        with harness.zhongtai_server(url, workers=workers) as server:
            target = f"{server.url}/api/v1/inventory/reservations"
            for run_tag, run_seconds in ((f"{tag}w", 1), (tag, seconds)):  # warm-up, then run
                script.write_text(
                    RESERVE_LUA
                    % {
                        "skus": ",".join(f'"{s}"' for s in skus),
                        "location": store_id,
                        "key": key,
                        "tag": run_tag,
                    }
                )
                result = harness.run_wrk(
                    target, connections=CLIENTS, seconds=run_seconds, script=script
                )
                if result.non_2xx or result.errors:
                    raise RuntimeError(
                        f"reservations over HTTP failed: {result.non_2xx} non-2xx answers, "
                        f"{result.errors} socket errors"
                    )
    return result


def _pgbench_keeping_stock(url: str, engine: Engine, script: str, seconds: int) -> float:
    """pgbench's rate; what it reserved (no reservation stands for it) is given back after."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_kept"))
        conn.execute(
            text(
                "CREATE TABLE bench_kept AS SELECT location_id, sku_id, reserved "
                "FROM stock_balances"
            )
        )
    _vacuum(url)
    rate = _pgbench(url, script, seconds)
    oversold = _oversold(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE stock_balances b SET reserved = k.reserved FROM bench_kept k "
                "WHERE k.location_id = b.location_id AND k.sku_id = b.sku_id "
                "AND b.reserved <> k.reserved"
            )
        )
        conn.execute(text("DROP TABLE bench_kept"))
    if oversold:
        raise RuntimeError(f"pgbench oversold {oversold} balance(s)")
    return rate


def _seed_atp(
    engine: Engine, skus: list[uuid.UUID], stores: int, per_store: int, rng: random.Random
) -> list[uuid.UUID]:
    """Stores in a ~40 km box; each stocks half of the core range and the rest from the tail."""
    half_lat = BOX_KM / 2 / 111.32
    half_lng = half_lat / 0.855  # cos(31.23°)
    locations, capabilities, balances = [], [], []
    core, tail = skus[:2000], skus[2000:]
    for n in range(stores):
        loc = _location(
            f"ATP{n:04d}",
            CENTRE[0] + rng.uniform(-half_lat, half_lat),
            CENTRE[1] + rng.uniform(-half_lng, half_lng),
        )
        locations.append(loc)
        capabilities.append(
            {
                "location_id": loc["id"],
                "capability": Capability.DELIVERY,
                "delivery_radius_m": rng.choice((3000, 5000, 8000)),
                "services": [],
            }
        )
        if rng.random() < 0.7:
            capabilities.append(
                {
                    "location_id": loc["id"],
                    "capability": Capability.PICKUP,
                    "delivery_radius_m": None,
                    "services": [],
                }
            )
        stocked = rng.sample(core, per_store // 2) + rng.sample(tail, per_store - per_store // 2)
        balances += [
            _balance(loc["id"], s, rng.randint(0, 40), safety=rng.choice((0, 0, 1, 2)))
            for s in stocked
        ]
    _insert(engine, Location.__table__, locations)
    _insert(engine, LocationCapability.__table__, capabilities)
    _insert(engine, BALANCES, balances)
    return core


def _atp_timings(
    url: str, core: list[uuid.UUID], addresses: int, rng: random.Random
) -> tuple[list[float], float]:
    half_lat = BOX_KM / 2 / 111.32
    half_lng = half_lat / 0.855
    db = Database.connect(url, pool_size=1, max_overflow=0)
    timings: list[float] = []
    offers = 0
    try:
        with db.reader() as s:
            for n in range(addresses + 20):
                lat = CENTRE[0] + rng.uniform(-half_lat, half_lat)
                lng = CENTRE[1] + rng.uniform(-half_lng, half_lng)
                basket = [
                    service.Line(sku, rng.randint(1, 3)) for sku in rng.sample(core, BASKET_LINES)
                ]
                start = time.perf_counter()
                found = stores_with_basket(s, lat, lng, basket)
                elapsed = (time.perf_counter() - start) * 1000
                if n >= 20:  # the first ones warm the caches and prepared statements
                    timings.append(elapsed)
                    offers += len(found)
    finally:
        db.dispose()
    return sorted(timings), offers / addresses


def _percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def run(*, quick: bool = False) -> tuple[dict[str, float], list[str]]:
    seconds = 3 if quick else 10
    atp_stores, atp_per_store, addresses = (100, 500, 300) if quick else (500, 2000, 2000)
    rng = random.Random(7)
    metrics: dict[str, float] = {}
    with harness.postgres_database("zt_bench_inventory") as url:
        migrate.upgrade(url)
        engine = create_engine(url, pool_size=2)
        try:
            skus = _seed_catalog(engine)
            store_id, hot, spread = _seed_reservation_store(engine, skus)
            script_args = {"location": store_id, "sku": hot, "rows": SPREAD_ROWS}
            key = _bench_key(url, store_id)
            oversold = 0
            short = 0
            best: dict[str, str] = {}
            http: dict[str, harness.WrkResult] = {}
            load_before = os.getloadavg()
            for phase, script, rows in (
                ("hot", HOT_SCRIPT, [hot]),
                ("spread", SPREAD_SCRIPT, spread),
            ):
                # The baseline right before and right after this phase's runs, on the same
                # rows: the machine is shared, and its speed drifts within minutes.
                before = _pgbench_keeping_stock(url, engine, script % script_args, seconds)
                for mode, processes, shape in SETUPS:
                    _vacuum(url)
                    if mode == "desk" and shape == "coroutines":
                        rate, missed = _coroutine_clients(
                            url, store_id, rows, seconds, f"{phase}-{mode}-{shape}"
                        )
                    else:
                        rate, missed = _service_run(
                            url, mode, processes, store_id, rows, seconds, f"{phase}-{mode}-{shape}"
                        )
                    metrics[f"{phase}_reserve_per_s_{mode}_{shape}"] = round(rate, 1)
                    short += missed
                for workers in HTTP_WORKERS:
                    _vacuum(url)
                    result = _http_run(
                        url, key, store_id, rows, seconds, workers, f"{phase}-http{workers}"
                    )
                    http[f"{phase}{workers}"] = result
                    metrics[f"{phase}_reserve_http_per_s_workers{workers}"] = round(
                        result.requests_per_s, 1
                    )
                    metrics[f"{phase}_reserve_http_p99_ms_workers{workers}"] = round(
                        result.p99_ms, 1
                    )
                after = _pgbench_keeping_stock(url, engine, script % script_args, seconds)
                metrics[f"{phase}_pgbench_per_s_before"] = round(before, 1)
                metrics[f"{phase}_pgbench_per_s_after"] = round(after, 1)
                metrics[f"{phase}_pgbench_per_s"] = round((before + after) / 2, 1)
                setups = [k for k in metrics if k.startswith(f"{phase}_reserve_per_s_")]
                best[phase] = max(setups, key=lambda k: metrics[k])
                metrics[f"{phase}_reserve_per_s"] = metrics[best[phase]]
                chosen = max(
                    HTTP_WORKERS,
                    key=lambda w: metrics[f"{phase}_reserve_http_per_s_workers{w}"],
                )
                metrics[f"{phase}_reserve_http_per_s"] = metrics[
                    f"{phase}_reserve_http_per_s_workers{chosen}"
                ]
                metrics[f"{phase}_reserve_http_p99_ms"] = metrics[
                    f"{phase}_reserve_http_p99_ms_workers{chosen}"
                ]
                metrics[f"{phase}_reserve_http_ratio"] = round(
                    metrics[f"{phase}_reserve_http_per_s"] / metrics[f"{phase}_pgbench_per_s"], 3
                )
            load_after = os.getloadavg()
            oversold += _oversold(engine)
            db = Database.connect(url, pool_size=1, max_overflow=0)
            try:
                with db.reader() as s:
                    differences = service.verify_stock(s)
            finally:
                db.dispose()
            if oversold or differences or short:
                raise RuntimeError(
                    f"inventory is not clean: {oversold} oversold balance(s), "
                    f"{short} refused reservation(s), verify: {differences[:5]}"
                )
            metrics["oversell_count"] = oversold
            for phase in ("hot", "spread"):
                metrics[f"{phase}_reserve_ratio"] = round(
                    metrics[f"{phase}_reserve_per_s"] / metrics[f"{phase}_pgbench_per_s"], 3
                )
            seed_start = time.perf_counter()
            core = _seed_atp(engine, skus, atp_stores, atp_per_store, rng)
            _vacuum(url)
            seed_s = time.perf_counter() - seed_start
            timings, mean_offers = _atp_timings(url, core, addresses, rng)
            metrics["atp_address_p50_ms"] = round(_percentile(timings, 0.50), 2)
            metrics["atp_address_p99_ms"] = round(_percentile(timings, 0.99), 2)
        finally:
            engine.dispose()
    setups = [f"{mode}_{shape}" for mode, _, shape in SETUPS]
    order = [
        "hot_reserve_per_s",
        "hot_pgbench_per_s",
        "hot_reserve_ratio",
        "spread_reserve_per_s",
        "spread_pgbench_per_s",
        "spread_reserve_ratio",
        "atp_address_p50_ms",
        "atp_address_p99_ms",
        "oversell_count",
        "hot_reserve_http_per_s",
        "hot_reserve_http_p99_ms",
        "hot_reserve_http_ratio",
        "spread_reserve_http_per_s",
        "spread_reserve_http_p99_ms",
        "spread_reserve_http_ratio",
        *(
            f"{phase}_pgbench_per_s_{when}"
            for phase in ("hot", "spread")
            for when in ("before", "after")
        ),
        *(f"{phase}_reserve_per_s_{setup}" for phase in ("hot", "spread") for setup in setups),
        *(
            f"{phase}_reserve_http_{what}_workers{w}"
            for phase in ("hot", "spread")
            for w in HTTP_WORKERS
            for what in ("per_s", "p99_ms")
        ),
    ]
    notes = [
        f"{CLIENTS} clients, {seconds}s per measurement; PostgreSQL, pgbench and the Python "
        "clients on the same machine",
        "*_pgbench_per_s: pgbench -M prepared -c 64 -j 2 running only the conditional UPDATE "
        "(reserved + 1 where on_hand - reserved - safety_stock >= 1), one per transaction; "
        f"hot = one row, spread = a random row of {SPREAD_ROWS:,} per transaction, picked by "
        "\\set and mapped to (location, SKU) through a 10,000-row lookup table joined in the "
        "UPDATE; run right before and right after each phase's service and HTTP runs "
        "(*_pgbench_per_s_before/_after), the ratios are against their mean; what pgbench "
        "reserved is given back after each run",
        f"*_reserve_per_s: the best of {len(SETUPS)} setups, each measured "
        f"(*_reserve_per_s_<setup>): {CLIENTS} clients as threads of one Python process (one "
        f"GIL), as {PROCESSES} processes x {CLIENTS // PROCESSES} threads, or (desk only) as "
        "coroutines of one event loop awaiting the desk, as the HTTP route does; each client "
        "reserves a one-line basket with a unique reference in a loop: successful holds per "
        f"second. Best here: hot {best['hot'].removeprefix('hot_reserve_per_s_')}, spread "
        f"{best['spread'].removeprefix('spread_reserve_per_s_')}",
        f"*_reserve_http_*: wrk -c {CLIENTS} posting one-line baskets (unique references, a "
        "random SKU of the phase's rows) to POST /api/v1/inventory/reservations of `zhongtai "
        f"serve` (relay in-process) with {' or '.join(map(str, HTTP_WORKERS))} worker "
        "processes, each with its own reservation desk; every answer 201; the headline is the "
        "better worker count; after a 1 s warm-up",
        "direct: each client calls inventory.reserve in a transaction of its own (its own "
        "connection, commit per call): one statement claims the reference (only at an open "
        "location), locks the balance row and judges the basket; a second takes the stock "
        "(conditional UPDATE) and writes the line and the stock event; commit",
        f"desk: the clients of a process hand their baskets to its ReservationDesk ({DESK_WORKERS} "
        f"workers, a connection each), each holding whatever has queued (up to 64 baskets) in one "
        "transaction and one commit; a client returns after the commit. Baskets sharing no row "
        "with an earlier one of the batch (spread: nearly all) take the same two statements for "
        "the whole batch; the others are judged after them in arrival order against their "
        "locked rows (hot: one conditional UPDATE of the batch's total), with one INSERT each "
        "for reservations, lines and stock events",
        "the machine is shared with other work: load average (1/5/15 min) "
        f"{' / '.join(f'{x:.2f}' for x in load_before)} before the runs, "
        f"{' / '.join(f'{x:.2f}' for x in load_after)} after them; pgbench and each setup "
        "ran at different moments, so a ratio carries that noise",
        "hot desk in processes is below hot desk in threads: four desks pass the one row "
        "between their batches, each holding its lock from UPDATE to commit, with batches "
        "a quarter the size",
        "oversell_count counts balances with reserved > on_hand - safety_stock after every "
        "pgbench run and after all runs, and verify_stock was clean after the service and HTTP "
        "runs (checked before the ATP stores were seeded)",
        f"ATP: {atp_stores} stores in a ~{BOX_KM:.0f} km box around Shanghai, delivery radius "
        f"3/5/8 km, 70% with pickup; catalog of {CATALOG_SKUS:,} SKUs, each store stocking "
        f"{atp_per_store:,} of them (half of a 2,000-SKU core range, half from the tail; "
        f"{atp_stores * atp_per_store:,} balance rows rather than the "
        f"{atp_stores * CATALOG_SKUS:,} of full ranging), seeded in {seed_s:.0f}s",
        f"atp_address_*: stores_with_basket in-process (one session, no channel) for a "
        f"{BASKET_LINES}-line basket from the core range at {addresses:,} random addresses "
        f"in the box, after 20 warm-up calls; {mean_offers:.1f} stores offered per address "
        "on average",
    ]
    return {k: metrics[k] for k in order}, notes
