"""bench/run orders: place-order through HTTP against pgbench, sourcing, and a POS offline replay.

On a PostgreSQL database of its own (schema by ``migrate.upgrade``, rows inserted directly):
three delivery stores near People's Square stock a 10,000-SKU catalog (the first SKUs are a
deliberately scarce group), a fourth store far away has five tills for the POS replay.

- ``pgbench_order_per_s``: pgbench at 64 clients, one transaction that holds 3 stock rows by
  conditional UPDATE and inserts the order, its 3 lines and one outbox row into our tables.
- ``http_ceiling_per_s``: wrk on ``/healthz`` of the same server (``zhongtai serve``).
- ``place_order_*``: 64 asyncio clients (aiohttp, in processes of their own) each looping quote
  (3-line delivery basket) + place order through HTTP; orders/s and p99 of the pair.
- ``pos_replay_*``: 10,000 offline sales from 5 terminals in batches of 200, each batch sent
  twice at once; wall time, and POS orders in the database afterwards.
- ``oversell_count``: delivery-store balances holding more than they have, after the run.
- ``sourcing_p99_ms``: :func:`bench.sourcing.run` (pure, 500 stores, 5-line baskets).
- ``quote_statements``, ``place_statements``, ``pair_cpu_ms``: the same quote + place in this
  process (the app behind an in-process test client, no network), after the run: SQL statements
  per request and CPU per pair. Unlike throughput they hardly move with the machine's load.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, func, insert, select, text

from bench import harness
from bench import sourcing as sourcing_bench
from zhongtai.app import create_app
from zhongtai.catalog.models import Category, Product, ProductKind, SaleUnit, Sku
from zhongtai.core import migrate
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Channel
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.ids import new_id
from zhongtai.core.settings import Settings
from zhongtai.inventory.ledger import BALANCES, MOVEMENTS
from zhongtai.inventory.models import MovementKind
from zhongtai.inventory.verify import verify_stock
from zhongtai.orders.kinds import SalesChannel
from zhongtai.orders.models import Order
from zhongtai.stores.models import (
    Capability,
    Location,
    LocationCapability,
    LocationKind,
    LocationStatus,
    PilotScope,
)
from zhongtai.stores.service_pilot import upsert_pilot_rule

CLIENTS = 64
CLIENT_PROCESSES = 2
WORKERS = 2  # bench/api measured 2 workers best on this machine
_DEFAULT_SLOTS = Settings.model_fields["db_pool_size"].default
SKUS = 10_000
SCARCE_SKUS = 5
SCARCE_ON_HAND, SCARCE_SAFETY = 2, 1
ON_HAND, SAFETY = 5_000, 2
#: One basket in this many swaps a line for a scarce SKU, so that holds race for the last units.
SCARCE_EVERY = 10
BASKET_LINES = 3
CENTRE = (31.2304, 121.4737)  # People's Square
#: Delivery stores around the centre (~1 km apart); customers within ~1.5 km of it.
STORE_OFFSETS = ((0.0, 0.0), (0.009, 0.004), (-0.006, -0.008))
DELIVERY_RADIUS_M = 5_000
CUSTOMER_SPREAD_DEG = 0.013
TERMINALS = 5
POS_BATCH = 200
RESEND_TRIES = 10
CHUNK = 20_000
APP_PHONE = "13812345678"

ORDER_SCRIPT = """\
\\set a random(1, %(rows)d)
\\set b random(1, %(rows)d)
\\set c random(1, %(rows)d)
\\set lo least(:a, :b, :c)
\\set hi greatest(:a, :b, :c)
\\set mid :a + :b + :c - :lo - :hi
BEGIN;
UPDATE stock_balances SET reserved = reserved + 1, updated_at = now()
  FROM bench_order_rows r WHERE r.n = :lo AND stock_balances.location_id = r.location_id
  AND stock_balances.sku_id = r.sku_id AND on_hand - reserved - safety_stock >= 1;
UPDATE stock_balances SET reserved = reserved + 1, updated_at = now()
  FROM bench_order_rows r WHERE r.n = :mid AND stock_balances.location_id = r.location_id
  AND stock_balances.sku_id = r.sku_id AND on_hand - reserved - safety_stock >= 1;
UPDATE stock_balances SET reserved = reserved + 1, updated_at = now()
  FROM bench_order_rows r WHERE r.n = :hi AND stock_balances.location_id = r.location_id
  AND stock_balances.sku_id = r.sku_id AND on_hand - reserved - safety_stock >= 1;
INSERT INTO orders (id, number, channel, fulfillment_type, status, store_id, substitution,
  currency, subtotal, discount_total, delivery_fee, total, paid_amount, refunded_amount,
  contact_name, contact_phone_masked, address, reservation_ids, placed_at, payment_due_at,
  promised_ready_at, promised_by, actor, created_at, updated_at)
  VALUES (gen_random_uuid(), 'PGB' || replace(gen_random_uuid()::text, '-', ''), 'app',
  'delivery', 'created', '%(store)s', 'none', 'CNY', 3000, 0, 500, 3500, 0, 0, '王女士',
  '138****5678', '%(address)s', '["%(store)s"]', now(), now() + interval '15 minutes',
  now() + interval '12 minutes', now() + interval '30 minutes', 'pgbench', now(), now())
  RETURNING id AS order_id \\gset
INSERT INTO order_lines (id, order_id, line_no, kind, sku_id, location_id, quantity,
  unit_price, price_per, amount, discount, net_amount, short_refund, returned_quantity,
  returned_refund)
  SELECT gen_random_uuid(), CAST(:order_id AS uuid), x.line_no, 'goods', r.sku_id,
  r.location_id, 1, 1000, 1, 1000, 0, 1000, 0, 0, 0
  FROM (VALUES (1, CAST(:lo AS int)), (2, CAST(:mid AS int)), (3, CAST(:hi AS int)))
  AS x(line_no, n)
  JOIN bench_order_rows r ON r.n = x.n;
INSERT INTO outbox_events (id, type, version, aggregate_type, aggregate_id, store_id,
  occurred_at, payload, actor)
  VALUES (gen_random_uuid(), 'order.created', 1, 'order', :order_id, '%(store)s', now(),
  '%(payload)s', 'pgbench');
END;
"""


@dataclass(frozen=True)
class Chain:
    """What the seed made: the stores, the catalog and the keys the clients use."""

    delivery_stores: list[uuid.UUID]
    pos_store: uuid.UUID
    skus: list[uuid.UUID]  # the plentiful ones
    scarce: list[uuid.UUID]
    prices: dict[uuid.UUID, int]
    app_key: str
    pos_keys: list[str]


# --- seed -------------------------------------------------------------------------------


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
        "region": "黄浦区",
        "city": "上海",
        "address": "人民大道 1 号",
        "latitude": lat,
        "longitude": lng,
        "timezone": "Asia/Shanghai",
        "created_at": now,
        "updated_at": now,
    }


def _seed_catalog(engine: Engine) -> dict[uuid.UUID, int]:
    now = utcnow()
    category = {"id": new_id(), "code": "BENCH", "name": "bench", "created_at": now}
    category["updated_at"] = now
    _insert(engine, Category.__table__, [category])
    products: list[dict[str, Any]] = []
    skus: list[dict[str, Any]] = []
    for i in range(SKUS):
        pid = new_id()
        common = {"name": f"商品 {i}", "is_active": True, "created_at": now, "updated_at": now}
        products.append(
            {
                "id": pid,
                "code": f"P{i:05d}",
                "category_id": category["id"],
                "kind": ProductKind.STANDARD,
                "unit": SaleUnit.PIECE,
                **common,
            }
        )
        skus.append(
            {
                "id": new_id(),
                "code": f"S{i:05d}",
                "product_id": pid,
                "attributes": {},
                "base_price": 100 + (i * 37) % 4900,
                "currency": "CNY",
                "price_per": 1,
                **common,
            }
        )
    _insert(engine, Product.__table__, products)
    _insert(engine, Sku.__table__, skus)
    return {s["id"]: s["base_price"] for s in skus}


def _stock(
    engine: Engine, stores: list[uuid.UUID], skus: list[uuid.UUID], scarce: set[uuid.UUID]
) -> None:
    """A balance for every SKU in every store, each with its receipt in the ledger."""
    now = utcnow()
    balances = [
        {
            "location_id": store,
            "sku_id": sku,
            "on_hand": SCARCE_ON_HAND if sku in scarce else ON_HAND,
            "reserved": 0,
            "safety_stock": SCARCE_SAFETY if sku in scarce else SAFETY,
            "in_transit": 0,
            "low_stock_level": 0,
            "updated_at": now,
        }
        for store in stores
        for sku in skus
    ]
    _insert(engine, BALANCES, balances)
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


def _seed(url: str) -> Chain:
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        prices = _seed_catalog(engine)
        all_skus = list(prices)
        stores = [
            _location(f"SH{n:02d}", CENTRE[0] + dlat, CENTRE[1] + dlng)
            for n, (dlat, dlng) in enumerate(STORE_OFFSETS)
        ]
        # Far from every customer: never a delivery candidate, so its tills' sales never meet
        # the holds the oversell check looks at.
        till_store = _location("POS01", CENTRE[0] + 1.0, CENTRE[1] - 1.0)
        _insert(engine, Location.__table__, [*stores, till_store])
        _insert(
            engine,
            LocationCapability.__table__,
            [
                {
                    "location_id": s["id"],
                    "capability": Capability.DELIVERY,
                    "delivery_radius_m": DELIVERY_RADIUS_M,
                    "services": [],
                }
                for s in stores
            ],
        )
        scarce = all_skus[:SCARCE_SKUS]
        store_ids = [s["id"] for s in stores]
        _stock(engine, [*store_ids, till_store["id"]], all_skus, set(scarce))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE bench_order_rows (n int PRIMARY KEY, location_id uuid, "
                    "sku_id uuid)"
                )
            )
            conn.execute(
                text("INSERT INTO bench_order_rows VALUES (:n, :l, :s)"),
                [
                    {"n": i + 1, "l": store_ids[0], "s": s}
                    for i, s in enumerate(all_skus[SCARCE_SKUS:])
                ],
            )
    finally:
        engine.dispose()
    db = Database.connect(url, pool_size=1, max_overflow=0)
    try:
        with db.writer() as s, s.begin():
            upsert_pilot_rule(
                s, feature="delivery", scope=PilotScope.CHAIN, scope_value="*", enabled=True
            )
            app_key = auth.create_api_key(s, name="bench app", channel=Channel.APP).full_key
            pos_keys = [
                auth.create_api_key(
                    s,
                    name=f"bench till {n}",
                    channel=Channel.POS,
                    store_id=till_store["id"],
                    terminal_id=f"T{n}",
                ).full_key
                for n in range(1, TERMINALS + 1)
            ]
    finally:
        db.dispose()
    _vacuum(url)
    return Chain(
        delivery_stores=store_ids,
        pos_store=till_store["id"],
        skus=all_skus[SCARCE_SKUS:],
        scarce=scarce,
        prices=prices,
        app_key=app_key,
        pos_keys=pos_keys,
    )


def _vacuum(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


# --- pgbench baseline -----------------------------------------------------------------------


def _pgbench_orders(url: str, chain: Chain, seconds: int) -> harness.PgbenchRun:
    """The database's own rate for the work of one order; its rows are removed afterwards."""
    store = chain.delivery_stores[0]
    address = json.dumps({"latitude": CENTRE[0], "longitude": CENTRE[1], "text": "黄浦区某小区"})
    # About the size of the order.created payload the service writes for a 3-line order.
    payload = json.dumps(
        {
            "order_id": str(uuid.uuid4()),
            "number": "O" + "0" * 20,
            "channel": "app",
            "fulfillment_type": "delivery",
            "status": "created",
            "store_id": str(store),
            "member_id": None,
            "total": 3500,
            "currency": "CNY",
            "lines": [
                {
                    "line_id": str(uuid.uuid4()),
                    "sku_id": str(uuid.uuid4()),
                    "service": None,
                    "location_id": str(store),
                    "quantity": 1,
                    "net_amount": 1000,
                }
                for _ in range(3)
            ],
            "channel_order_id": None,
            "promised_by": utcnow().isoformat(),
            "guide_id": None,
        },
        ensure_ascii=False,
    )
    script = ORDER_SCRIPT % {
        "rows": len(chain.skus),
        "store": store,
        "address": address,
        "payload": payload,
    }
    run = harness.run_pgbench(url, script, clients=CLIENTS, seconds=seconds)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM order_lines USING orders WHERE order_lines.order_id = orders.id "
                    "AND orders.actor = 'pgbench'"
                )
            )
            conn.execute(text("DELETE FROM orders WHERE actor = 'pgbench'"))
            conn.execute(text("DELETE FROM outbox_events WHERE actor = 'pgbench'"))
            conn.execute(text("UPDATE stock_balances SET reserved = 0 WHERE reserved <> 0"))
    finally:
        engine.dispose()
    _vacuum(url)
    return run


# --- place-order clients ----------------------------------------------------------------


@dataclass(frozen=True)
class ClientPlan:
    base_url: str
    key: str
    skus: list[uuid.UUID]
    scarce: list[uuid.UUID]
    clients: int
    warm_seconds: float
    seconds: float
    seed: str


@dataclass
class ClientReport:
    latencies_ms: list[float]
    refused: int
    cpu_seconds: float
    failures: list[str]


def _basket(rng: random.Random, plan: ClientPlan) -> list[dict[str, Any]]:
    skus = rng.sample(plan.skus, BASKET_LINES)
    if rng.randrange(SCARCE_EVERY) == 0:
        skus[0] = rng.choice(plan.scarce)
    return [{"sku_id": str(s), "quantity": 1} for s in skus]


async def _customer(
    client: aiohttp.ClientSession,
    plan: ClientPlan,
    rng: random.Random,
    window: tuple[float, float],
    report: ClientReport,
) -> None:
    """One app user after another: quote a delivery basket, place the order, again."""
    start, end = window
    headers = {"X-API-Key": plan.key}
    while time.monotonic() < end:
        address = {
            "latitude": CENTRE[0] + rng.uniform(-CUSTOMER_SPREAD_DEG, CUSTOMER_SPREAD_DEG),
            "longitude": CENTRE[1] + rng.uniform(-CUSTOMER_SPREAD_DEG, CUSTOMER_SPREAD_DEG),
            "text": "黄浦区某小区 1 号楼",
        }
        began = time.monotonic()
        try:
            async with client.post(
                "/api/v1/checkout/quotes",
                json={
                    "fulfillment_type": "delivery",
                    "lines": _basket(rng, plan),
                    "address": address,
                },
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            ) as quoted:
                quote_status, quote = quoted.status, await quoted.read()
            if quote_status == 409:  # the scarce SKU ran out: the customer is told so
                if start <= time.monotonic() <= end:
                    report.refused += 1
                continue
            if quote_status != 201:
                report.failures.append(f"quote answered {quote_status}: {quote[:300]!r}")
                continue
            async with client.post(
                "/api/v1/orders",
                json={
                    "quote_id": json.loads(quote)["id"],
                    "contact_name": "王女士",
                    "contact_phone": APP_PHONE,
                },
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            ) as placed:
                place_status, order = placed.status, await placed.read()
        except aiohttp.ClientError as lost:  # counted; the customer tries another basket
            report.failures.append(f"connection lost: {lost!r}")
            continue
        if place_status != 201:
            report.failures.append(f"place answered {place_status}: {order[:300]!r}")
            continue
        done = time.monotonic()
        if start <= done <= end:
            report.latencies_ms.append((done - began) * 1000)


async def _customers(plan: ClientPlan, go: float) -> ClientReport:
    report = ClientReport([], 0, 0.0, [])
    start = go + plan.warm_seconds
    window = (start, start + plan.seconds)
    connector = aiohttp.TCPConnector(limit=plan.clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        base_url=plan.base_url, connector=connector, timeout=timeout
    ) as client:
        await asyncio.sleep(max(0.0, go - time.monotonic()))

        async def cpu_during_window() -> None:
            await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
            before = time.process_time()
            await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
            report.cpu_seconds = time.process_time() - before

        rngs = [random.Random(f"{plan.seed}-{i}") for i in range(plan.clients)]
        await asyncio.gather(
            cpu_during_window(),
            *(_customer(client, plan, rng, window, report) for rng in rngs),
        )
    return report


def _client_process(plan: ClientPlan, ready: Any, go: Any, out: Any) -> None:
    try:
        ready.wait()
        out.put(asyncio.run(_customers(plan, go.get())))
    except BaseException as e:  # the parent fails the run with it
        out.put(e)


@dataclass(frozen=True)
class PlaceOrderRun:
    per_s: float
    p50_ms: float
    p99_ms: float
    orders: int
    refused: int
    failures: list[str]
    client_cpu_cores: float
    server_cpu_cores: float
    db_cpu_cores: float | None
    machine_cpu_cores: float


def _place_orders(
    server: harness.Server, chain: Chain, url: str, *, warm: float, seconds: float
) -> PlaceOrderRun:
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Barrier(CLIENT_PROCESSES + 1), ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_client_process,
            args=(
                ClientPlan(
                    server.url,
                    chain.app_key,
                    chain.skus,
                    chain.scarce,
                    CLIENTS // CLIENT_PROCESSES,
                    warm,
                    seconds,
                    f"c{n}",
                ),
                ready,
                go,
                out,
            ),
        )
        for n in range(CLIENT_PROCESSES)
    ]
    for p in procs:
        p.start()
    ready.wait()
    start = time.monotonic() + 0.5
    for _ in procs:
        go.put(start)
    # The machine's and the server's CPU over the same window as the clients measure theirs.
    time.sleep(max(0.0, start + warm - time.monotonic()))
    server_root, db_root = server.process.pid, harness.postmaster_pid(url)
    server_cpu, machine_cpu = harness.tree_cpu_seconds(server_root), harness.machine_busy_seconds()
    db_cpu = harness.tree_cpu_seconds(db_root) if db_root is not None else 0.0
    time.sleep(max(0.0, start + warm + seconds - time.monotonic()))
    server_cpu = harness.tree_cpu_seconds(server_root) - server_cpu
    db_cpu = harness.tree_cpu_seconds(db_root) - db_cpu if db_root is not None else 0.0
    machine_cpu = harness.machine_busy_seconds() - machine_cpu
    reports = [out.get(timeout=warm + seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    failed = [r for r in reports if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"a client process failed: {failed[0]!r}")
    latencies = sorted(x for r in reports for x in r.latencies_ms)
    if not latencies:
        raise RuntimeError("no order was placed in the measured window")
    return PlaceOrderRun(
        per_s=len(latencies) / seconds,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        orders=len(latencies),
        refused=sum(r.refused for r in reports),
        failures=[f for r in reports for f in r.failures],
        client_cpu_cores=sum(r.cpu_seconds for r in reports) / seconds,
        server_cpu_cores=server_cpu / seconds,
        db_cpu_cores=db_cpu / seconds if db_root is not None else None,
        machine_cpu_cores=machine_cpu / seconds,
    )


def _cores(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "(not readable)"


def _percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


# --- cost of one pair, in process ------------------------------------------------------------


@dataclass(frozen=True)
class PairCost:
    quote_statements: int
    place_statements: int
    cpu_ms: float


def _pair_cost(url: str, chain: Chain, pairs: int) -> PairCost:
    """Quote + place through the app in this process: statements per request, CPU per pair.

    The test client runs the app in this process, so the CPU includes the client's small share
    and no network; the statements are exactly what a server sends for the same requests.
    """
    db = Database.connect(url, pool_size=1, max_overflow=0)
    sent: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    rng = random.Random("pair-cost")
    headers = {"X-API-Key": chain.app_key}
    try:
        app = create_app(Settings(database_url=url, log_level="WARNING"), db=db)
        with TestClient(app) as client:

            def pair() -> tuple[int, int]:
                address = {
                    "latitude": CENTRE[0] + rng.uniform(-CUSTOMER_SPREAD_DEG, CUSTOMER_SPREAD_DEG),
                    "longitude": CENTRE[1] + rng.uniform(-CUSTOMER_SPREAD_DEG, CUSTOMER_SPREAD_DEG),
                }
                lines = [{"sku_id": str(s), "quantity": 1} for s in rng.sample(chain.skus, 3)]
                sent.clear()
                quoted = client.post(
                    "/api/v1/checkout/quotes",
                    json={"fulfillment_type": "delivery", "lines": lines, "address": address},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                if quoted.status_code != 201:
                    raise RuntimeError(f"in-process quote answered {quoted.status_code}")
                quote_statements = len(sent)
                sent.clear()
                placed = client.post(
                    "/api/v1/orders",
                    json={"quote_id": quoted.json()["id"], "contact_phone": APP_PHONE},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                if placed.status_code != 201:
                    raise RuntimeError(f"in-process place answered {placed.status_code}")
                return quote_statements, len(sent)

            for _ in range(20):  # warm: statement caches, connection, first-call imports
                pair()
            quote_statements, place_statements = pair()
            began = time.process_time()
            for _ in range(pairs):
                pair()
            cpu_ms = (time.process_time() - began) / pairs * 1000
    finally:
        db.dispose()
    return PairCost(quote_statements, place_statements, cpu_ms)


# --- POS offline replay -----------------------------------------------------------------


def _offline_sales(chain: Chain, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """A terminal's queue: sales of the last hours, priced at the till's cached prices, paid
    in cash with change."""
    now = utcnow()
    sales = []
    for _ in range(count):
        lines: list[dict[str, Any]] = [
            {"sku_id": str(sku), "quantity": rng.randint(1, 2), "unit_price": chain.prices[sku]}
            for sku in rng.sample(chain.skus, rng.randint(1, 3))
        ]
        total = sum(x["quantity"] * x["unit_price"] for x in lines)
        sales.append(
            {
                "client_sale_id": str(uuid.uuid4()),
                "occurred_at": (now - timedelta(minutes=rng.randint(5, 300))).isoformat(),
                "lines": lines,
                "tenders": [{"type": "cash", "amount": (total // 10_000 + 1) * 10_000}],
            }
        )
    return sales


@dataclass
class TerminalReport:
    recorded: int = 0
    duplicate: int = 0
    resent: int = 0
    lost: list[str] = field(default_factory=list)  # why each resend was needed
    problems: list[str] = field(default_factory=list)


async def _upload(
    client: httpx.AsyncClient,
    key: str,
    batch: list[dict[str, Any]],
    report: TerminalReport,
    rng: random.Random,
    tries: int,
) -> None:
    """One upload of a batch. On a server error or a lost connection the terminal sends it
    again after a growing, jittered pause, as a till does (resends are counted with their
    cause)."""
    for attempt in range(tries):
        if attempt:
            await asyncio.sleep(min(5.0, 0.25 * 2**attempt) * rng.uniform(0.5, 1.5))
        try:
            answer = await client.post(
                "/api/v1/pos/sales/batch", json={"sales": batch}, headers={"X-API-Key": key}
            )
        except httpx.TransportError as lost:
            report.resent += 1
            report.lost.append(repr(lost))
            continue
        if answer.status_code >= 500:
            report.resent += 1
            report.lost.append(f"{answer.status_code}: {answer.text[:200]}")
            continue
        if answer.status_code != 200:
            report.problems.append(f"batch answered {answer.status_code}: {answer.text[:300]}")
            return
        for result in answer.json()["results"]:
            if result["status"] == "recorded":
                report.recorded += 1
            elif result["status"] == "duplicate":
                report.duplicate += 1
            else:
                report.problems.append(f"sale rejected: {result}")
        return
    report.problems.append(f"a batch failed {tries} time(s), last: {report.lost[-1]}")


async def _terminal(
    base_url: str, key: str, batches: list[list[dict[str, Any]]], tries: int
) -> TerminalReport:
    report = TerminalReport()
    rng = random.Random(key)
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        for batch in batches:
            # Sent twice at once: the terminal's retry overtakes an answer that is slow to come.
            await asyncio.gather(
                *(_upload(client, key, batch, report, rng, tries) for _ in range(2))
            )
    return report


def _batches(queue: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [queue[i : i + POS_BATCH] for i in range(0, len(queue), POS_BATCH)]


async def _replay_at_once(
    base_url: str, keys: list[str], queues: list[list[dict[str, Any]]], tries: int = 1
) -> list[TerminalReport]:
    """Every terminal uploads at the same time, each batch sent twice at once."""
    return list(
        await asyncio.gather(
            *(
                _terminal(base_url, key, _batches(q), tries)
                for key, q in zip(keys, queues, strict=True)
            )
        )
    )


# --- checks -------------------------------------------------------------------------------


def _oversold(url: str, stores: list[uuid.UUID]) -> int:
    b = BALANCES.c
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(BALANCES)
                    .where(
                        b.location_id.in_(stores),
                        (b.reserved > b.on_hand - b.safety_stock) | (b.on_hand < 0),
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


def _counts(url: str, chain: Chain) -> tuple[int, int, int]:
    """POS orders, app orders, and scarce units held, in the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            pos = conn.scalar(
                select(func.count()).select_from(Order).where(Order.channel == SalesChannel.POS)
            )
            app = conn.scalar(
                select(func.count()).select_from(Order).where(Order.channel == SalesChannel.APP)
            )
            held = conn.scalar(
                select(func.coalesce(func.sum(BALANCES.c.reserved), 0)).where(
                    BALANCES.c.sku_id.in_(chain.scarce)
                )
            )
    finally:
        engine.dispose()
    return int(pos or 0), int(app or 0), int(held or 0)


def _verify(url: str) -> list[Any]:
    db = Database.connect(url, pool_size=1, max_overflow=0)
    try:
        with db.reader() as s:
            return verify_stock(s)
    finally:
        db.dispose()


# --- run --------------------------------------------------------------------------------


def run(*, quick: bool = False) -> tuple[dict[str, float], list[str]]:
    seconds = 5 if quick else 20
    warm = 2.0 if quick else 5.0
    sales_per_terminal = POS_BATCH if quick else 2_000
    rng = random.Random(5)
    load_before = harness.load_average()
    with harness.postgres_database("zt_bench_orders") as url:
        seed_started = time.perf_counter()
        chain = _seed(url)
        seed_s = time.perf_counter() - seed_started
        pgbench = _pgbench_orders(url, chain, seconds)
        pgbench_rate = pgbench.tps
        queues = [_offline_sales(chain, sales_per_terminal, rng) for _ in range(TERMINALS)]
        probe_queues = [_offline_sales(chain, POS_BATCH, rng) for _ in range(TERMINALS)]
        with harness.zhongtai_server(url, workers=WORKERS) as server:
            harness.run_wrk(f"{server.url}/healthz", connections=CLIENTS, seconds=1)  # warm up
            ceiling = harness.run_wrk(
                f"{server.url}/healthz", connections=CLIENTS, seconds=min(seconds, 10)
            )
            placed = _place_orders(server, chain, url, warm=warm, seconds=seconds)
            load_during = harness.load_average()
            replay_started = time.perf_counter()
            terminals = asyncio.run(
                _replay_at_once(server.url, chain.pos_keys, queues, RESEND_TRIES)
            )
            replay_s = time.perf_counter() - replay_started
            pos_orders = _counts(url, chain)[0]
            probe = asyncio.run(_replay_at_once(server.url, chain.pos_keys, probe_queues))
        _, app_orders, scarce_held = _counts(url, chain)
        oversold = _oversold(url, chain.delivery_stores)
        differences = _verify(url)
        cost = _pair_cost(url, chain, pairs=50 if quick else 200)
    sourcing_metrics, sourcing_notes = sourcing_bench.run(quick=quick)
    sent = TERMINALS * sales_per_terminal
    recorded = sum(t.recorded for t in terminals)
    duplicates = sum(t.duplicate for t in terminals)
    resent = sum(t.resent for t in terminals)
    problems = [p for t in terminals for p in t.problems]
    lost = [x for t in terminals for x in t.lost]
    # Each terminal sent one batch, twice at once: 10 uploads; a lost one is a 5xx or a drop.
    probe_failed = sum(len(t.lost) for t in probe)
    probe_recorded = sum(t.recorded for t in probe)
    if ceiling.non_2xx or ceiling.errors:
        raise RuntimeError(f"failed requests on /healthz: {ceiling}")
    server_ms_per_order = placed.server_cpu_cores * 1000 / placed.per_s
    # The database's own CPU per order and per pgbench transaction: where the work went.
    db_ms_per_order = (
        placed.db_cpu_cores * 1000 / placed.per_s if placed.db_cpu_cores is not None else -1.0
    )
    db_ms_per_pgbench = (
        pgbench.db_cpu_cores * 1000 / pgbench.tps if pgbench.db_cpu_cores is not None else -1.0
    )
    machine_ms_per_order = placed.machine_cpu_cores * 1000 / placed.per_s
    machine_ms_per_pgbench = pgbench.machine_cpu_cores * 1000 / pgbench.tps
    metrics: dict[str, float] = {
        "place_order_per_s": round(placed.per_s, 1),
        "place_order_p99_ms": round(placed.p99_ms, 1),
        "pgbench_order_per_s": round(pgbench_rate, 1),
        "place_order_ratio": round(placed.per_s / pgbench_rate, 3),
        "http_ceiling_per_s": round(ceiling.requests_per_s, 1),
        "sourcing_p99_ms": sourcing_metrics["sourcing_p99_ms"],
        "pos_replay_seconds": round(replay_s, 1),
        "pos_replay_recorded": pos_orders,
        "oversell_count": oversold,
        "place_order_p50_ms": round(placed.p50_ms, 1),
        "place_order_refused": placed.refused,
        "place_order_failed": len(placed.failures),
        "client_cpu_cores": round(placed.client_cpu_cores, 2),
        "server_cpu_cores": round(placed.server_cpu_cores, 2),
        "machine_cpu_cores": round(placed.machine_cpu_cores, 2),
        "pos_replay_sales_per_s": round(sent / replay_s, 1),
        "pos_replay_problems": len(problems),
        "pos_replay_resends": resent,
        "pos_at_once_uploads_failed": probe_failed,
        "verify_stock_differences": len(differences),
        "server_cpu_ms_per_order": round(server_ms_per_order, 1),
        "db_cpu_ms_per_order": round(db_ms_per_order, 2),
        "pgbench_db_cpu_ms_per_txn": round(db_ms_per_pgbench, 2),
        "machine_cpu_ms_per_order": round(machine_ms_per_order, 2),
        "pgbench_machine_cpu_ms_per_txn": round(machine_ms_per_pgbench, 2),
        "quote_statements": cost.quote_statements,
        "place_statements": cost.place_statements,
        "pair_cpu_ms": round(cost.cpu_ms, 1),
    }
    notes = [
        f"{'QUICK run: shorter windows and ' + str(sent) + ' POS sales; ' if quick else ''}"
        f"PostgreSQL, server, clients, pgbench and wrk on one 2-core machine shared with other "
        f"work: load average (1/5/15 min) {load_before} before, {load_during} during the "
        "place-order run",
        f"seed: {SKUS:,} SKUs x 4 stores of balances with their receipts in the ledger, in "
        f"{seed_s:.0f}s; 3 delivery stores ~1 km apart (radius {DELIVERY_RADIUS_M / 1000:.0f} "
        "km, pilot rule delivery on chain-wide), 1 till store far away; the first "
        f"{SCARCE_SKUS} SKUs are scarce ({SCARCE_ON_HAND} on hand, safety {SCARCE_SAFETY} per "
        "store)",
        f"place_order_*: {CLIENTS} asyncio clients (aiohttp, {CLIENT_PROCESSES} processes x "
        f"{CLIENTS // CLIENT_PROCESSES}, keep-alive) against `zhongtai serve --workers "
        f"{WORKERS}` (uvloop, httptools; event relay and housekeeping on, as served; the "
        f"default {_DEFAULT_SLOTS} request slots and pooled connections per worker); each "
        "loop: POST /checkout/quotes (3-line delivery basket of random SKUs, random address "
        "within ~1.5 km; 1 basket in "
        f"{SCARCE_EVERY} has a scarce SKU) then POST /orders with contact name and phone, both "
        f"with an Idempotency-Key; orders placed in {seconds}s after {warm:.0f}s of warm-up; "
        "latency of the pair, p50 "
        f"{placed.p50_ms:.0f} ms; {placed.refused} quotes refused (409, scarce SKU gone)",
        f"CPU during the place-order window, in cores of 2: clients "
        f"{placed.client_cpu_cores:.2f}, server workers {placed.server_cpu_cores:.2f}, "
        f"PostgreSQL {_cores(placed.db_cpu_cores)}, the whole machine "
        f"{placed.machine_cpu_cores:.2f}: the client's share is taken from what the server "
        "and the database could have used",
        f"where the CPU of one order goes: the server's workers {server_ms_per_order:.1f} ms, "
        f"PostgreSQL {db_ms_per_order:.2f} ms (db_cpu_ms_per_order), the whole machine "
        f"{machine_ms_per_order:.1f} ms; one pgbench transaction: PostgreSQL "
        f"{db_ms_per_pgbench:.2f} ms (pgbench_db_cpu_ms_per_txn), the whole machine "
        f"{machine_ms_per_pgbench:.2f} ms with pgbench's own client (the middle 60% of its "
        "run); -1 where the database's processes could not be read",
        "pgbench_order_per_s: pgbench -M prepared -c 64 -j 2, one transaction: 3 conditional "
        "UPDATEs of stock_balances (reserved + 1 where on_hand - reserved - safety_stock >= 1; "
        f"rows picked at random among {len(chain.skus):,} of one store, taken in row order), "
        "INSERT into orders (RETURNING id), one INSERT of 3 order_lines, one INSERT into "
        "outbox_events with an order.created-sized JSON payload; its rows were deleted and "
        "reserved reset before the HTTP run",
        f"http_ceiling_per_s: wrk -c {CLIENTS} on /healthz of the same server",
        f"cost of a pair: the server workers spent {server_ms_per_order:.1f} "
        "ms of CPU per order placed in the window (server_cpu_ms_per_order); after the run, the "
        "same quote + place through the app in the benchmark's own process (in-process test "
        f"client, one connection) sent {cost.quote_statements} SQL statements per quote and "
        f"{cost.place_statements} per place, and took {cost.cpu_ms:.1f} ms of CPU per pair "
        "(pair_cpu_ms, client included)",
        f"pos_replay_*: {TERMINALS} terminals (one POS key each) of one store upload "
        f"{sales_per_terminal:,} offline sales each (1-3 lines, cached prices, cash with "
        f"change) in batches of {POS_BATCH}, all terminals AT ONCE, every batch sent "
        f"twice at once; answered {recorded:,} recorded and {duplicates:,} duplicate, {resent} "
        "resends after a 5xx or a lost connection"
        + (f" (first: {lost[0][:120]})" if lost else "")
        + "; pos_replay_recorded counts POS orders in the database after it",
        f"pos_at_once_uploads_failed: then all {TERMINALS} terminals at once, one new batch of "
        f"{POS_BATCH} each, sent twice at once, no resend: {probe_failed} of "
        f"{2 * TERMINALS} uploads failed, {probe_recorded} of {TERMINALS * POS_BATCH} sales "
        "recorded (a batch locks its stock rows in SKU order first, so tills of one store "
        "queue instead of deadlocking)",
        f"oversell_count: delivery-store balances with reserved > on_hand - safety_stock or "
        f"on_hand < 0 after the run ({app_orders:,} app orders in the database, "
        f"{scarce_held} scarce units held); verify_stock: "
        + (
            "clean (balances = ledger, reserved = active holds)"
            if not differences
            else f"{len(differences)} difference(s), first {differences[:3]}"
        ),
        *sourcing_notes,
    ]
    if placed.failures:
        notes.append(
            f"place-order FAILURES: {len(placed.failures)} answers other than 201/409, first: "
            f"{placed.failures[0]}"
        )
    if problems or pos_orders != sent:
        notes.append(
            f"POS replay PROBLEMS: {pos_orders} POS orders for {sent} sales sent; "
            f"{len(problems)} problem(s), first: {problems[:1]}"
        )
    return metrics, notes
