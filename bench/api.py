"""bench/run api: the HTTP ceiling of the server stack, and the POS barcode lookup against it.

Serves the demo chain on a PostgreSQL database of its own and loads it with wrk at 64
connections. ``http_ceiling_per_s`` is a trivial JSON GET through the same stack (middleware,
routing, serialisation, no database): the ceiling later benchmarks compare against. The barcode
lookup is authenticated with a POS key and rotates over the demo's barcodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import select

from bench import harness
from zhongtai.catalog.models import Barcode
from zhongtai.core import migrate
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Channel
from zhongtai.core.db import Database
from zhongtai.stores.models import Location, LocationKind

CONNECTIONS = 64
WORKER_OPTIONS = (1, 2)
ASYNC_APP = "bench.async_lookup:create_bench_app"
ASYNC_PATH = "/bench/async/barcodes/"

LUA = """
local codes = {%(codes)s}
local i = 0
wrk.headers["X-API-Key"] = "%(key)s"
request = function()
  i = i + 1
  return wrk.format("GET", "/api/v1/catalog/barcodes/" .. codes[(i %% #codes) + 1])
end
"""


def _prepare(url: str) -> tuple[str, list[str]]:
    migrate.upgrade(url)
    env = {**os.environ, "ZHONGTAI_DATABASE_URL": url}
    subprocess.run(
        [str(harness.VENV_BIN / "zhongtai"), "seed-demo", "--skus", "1000"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    db = Database.connect(url)
    try:
        with db.writer() as s, s.begin():
            store = s.scalars(
                select(Location).where(Location.kind == LocationKind.STORE).order_by(Location.code)
            ).first()
            assert store is not None, "the demo chain has no store"
            issued = auth.create_api_key(
                s, name="bench pos", channel=Channel.POS, store_id=store.id, terminal_id="BENCH"
            )
            codes = list(s.scalars(select(Barcode.code).order_by(Barcode.code).limit(1000)))
    finally:
        db.dispose()
    assert codes, "the demo chain has no barcodes"
    return issued.full_key, codes


def run(*, quick: bool = False) -> tuple[dict[str, float], list[str]]:
    seconds = 3 if quick else 10
    metrics: dict[str, float] = {}
    notes: list[str] = [
        f"wrk, {CONNECTIONS} connections, {seconds}s per measurement, server and wrk on the "
        "same machine; PostgreSQL on the same machine",
    ]
    with harness.postgres_database("zt_bench_api") as url:
        key, codes = _prepare(url)
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "barcode.lua"
            script.write_text(LUA % {"codes": ",".join(json.dumps(c) for c in codes), "key": key})
            async_script = Path(tmp) / "barcode_async.lua"
            async_script.write_text(
                script.read_text().replace("/api/v1/catalog/barcodes/", ASYNC_PATH)
            )
            for workers in WORKER_OPTIONS:
                with harness.zhongtai_server(url, workers=workers) as server:
                    ceiling, lookup = _measure(server.url, script, seconds)
                _record(metrics, f"_workers{workers}", ceiling, lookup)
            chosen = max(WORKER_OPTIONS, key=lambda w: metrics[f"barcode_lookup_per_s_workers{w}"])
            with harness.zhongtai_server(url, workers=chosen, app_factory=ASYNC_APP) as server:
                _, lookup = _measure(server.url, async_script, seconds, ceiling=False)
            metrics["barcode_lookup_async_per_s"] = round(lookup.requests_per_s, 1)
            metrics["barcode_lookup_async_p99_ms"] = round(lookup.p99_ms, 2)
    for name in ("http_ceiling_per_s", "barcode_lookup_per_s", "barcode_lookup_p99_ms"):
        metrics[name] = metrics[f"{name}_workers{chosen}"]
    metrics["workers_chosen"] = chosen
    metrics["barcode_lookup_share_of_ceiling"] = round(
        metrics["barcode_lookup_per_s"] / metrics["http_ceiling_per_s"], 3
    )
    metrics["async_vs_sync_lookup_ratio"] = round(
        metrics["barcode_lookup_async_per_s"] / metrics["barcode_lookup_per_s"], 3
    )
    notes += [
        f"headline metrics are from the best setup measured: {chosen} worker(s) (uvloop, "
        "httptools, sync SQLAlchemy sessions on worker threads)",
        "barcode_lookup_async_*: the same lookup (same auth, same statement, same row reading) "
        "on async psycopg through SQLAlchemy asyncio (bench/async_lookup.py), same workers",
    ]
    return metrics, notes


def _measure(
    url: str, script: Path, seconds: int, *, ceiling: bool = True
) -> tuple[harness.WrkResult | None, harness.WrkResult]:
    harness.run_wrk(url, connections=CONNECTIONS, seconds=1, script=script)  # warm up
    top = (
        harness.run_wrk(f"{url}/healthz", connections=CONNECTIONS, seconds=seconds)
        if ceiling
        else None
    )
    lookup = harness.run_wrk(url, connections=CONNECTIONS, seconds=seconds, script=script)
    for result in (top, lookup):
        if result is not None and (result.non_2xx or result.errors):
            raise RuntimeError(f"failed requests during the run of {script.name}: {result}")
    return top, lookup


def _record(
    metrics: dict[str, float],
    suffix: str,
    ceiling: harness.WrkResult | None,
    lookup: harness.WrkResult,
) -> None:
    assert ceiling is not None
    metrics["http_ceiling_per_s" + suffix] = round(ceiling.requests_per_s, 1)
    metrics["barcode_lookup_per_s" + suffix] = round(lookup.requests_per_s, 1)
    metrics["barcode_lookup_p99_ms" + suffix] = round(lookup.p99_ms, 2)
