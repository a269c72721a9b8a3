"""bench/run events: commit-to-webhook latency under a steady load, relay throughput, nothing lost.

On SQLite (a file of its own) and on PostgreSQL (a database of its own), in this process:

- the event backbone (relay + webhook sender, as `serve` runs it in-process) delivers to a real
  loopback HTTP receiver subscribed to one event type;
- a producer commits one event per transaction at a steady ``RATE`` per second for ``SECONDS``;
  each event's latency is its arrival at the receiver minus its commit (same clock);
- then a backlog of ``BACKLOG`` events is committed at once and timed until the relay has
  published every one (``relay_events_per_s``);
- ``events_lost`` counts committed events the receiver never got (after a drain deadline).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select

from bench import harness
from zhongtai.core import migrate
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent, event_type, record_event
from zhongtai.core.settings import Settings
from zhongtai.integrations.runtime import run_event_backbone
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhooks import create_subscription

RATE = 500
EVENT = "bench.shelf_checked"


@event_type(EVENT)
class ShelfChecked(BaseModel):
    """A shelf was checked (benchmark only)."""

    n: int


class Receiver:
    """A loopback webhook endpoint that notes when each event arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now = time.time()
                n = json.loads(body)["payload"]["n"]
                with receiver.lock:
                    receiver.arrived.setdefault(n, now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, numbers: range) -> int:
        with self.lock:
            return sum(1 for n in numbers if n in self.arrived)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def backbone(db: Database, events: EventSettings) -> Iterator[None]:
    """The relay and webhook sender on a thread of their own, as `serve` runs them."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(run_event_backbone(db, Settings(), events, stop))

    thread = threading.Thread(target=run, name="event-backbone", daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _steady_load(db: Database, receiver: Receiver, seconds: float) -> tuple[list[float], int]:
    """Commit RATE events a second; the latencies (ms) and how many never arrived."""
    committed: dict[int, float] = {}
    total = int(RATE * seconds)
    start = time.perf_counter()
    for n in range(total):
        due = start + n / RATE
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        with db.writer() as session, session.begin():
            record_event(
                session, ShelfChecked(n=n), aggregate_type="shelf", aggregate_id=str(n % 97)
            )
        committed[n] = time.time()
    deadline = time.time() + 60
    while receiver.count(range(total)) < total and time.time() < deadline:
        time.sleep(0.05)
    with receiver.lock:
        latencies = [
            (receiver.arrived[n] - committed[n]) * 1000 for n in committed if n in receiver.arrived
        ]
    return latencies, total - len(latencies)


def _backlog(db: Database, receiver: Receiver, first: int, count: int) -> tuple[float, int]:
    """Commit ``count`` events in one transaction; the relay's publishing rate, and losses."""
    with db.writer() as session, session.begin():
        for n in range(first, first + count):
            record_event(
                session, ShelfChecked(n=n), aggregate_type="shelf", aggregate_id=str(n % 97)
            )
    start = time.perf_counter()
    deadline = start + 300
    while time.perf_counter() < deadline:
        with db.reader() as session:
            left = session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
        if not left:
            break
        time.sleep(0.02)
    rate = count / (time.perf_counter() - start)
    numbers = range(first, first + count)
    drain = time.time() + 300
    while receiver.count(numbers) < count and time.time() < drain:
        time.sleep(0.1)
    return rate, count - receiver.count(numbers)


def _measure(url: str, seconds: float, backlog: int) -> dict[str, float]:
    migrate.upgrade(url)
    db = Database.connect(url, pool_size=10, max_overflow=5)
    receiver = Receiver()
    try:
        with db.writer() as session, session.begin():
            create_subscription(session, url=receiver.url, event_types=[EVENT])
        with backbone(db, EventSettings()):
            latencies, lost_steady = _steady_load(db, receiver, seconds)
            rate, lost_backlog = _backlog(db, receiver, int(RATE * seconds), backlog)
    finally:
        receiver.close()
        db.dispose()
    return {
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "relay": rate,
        "lost": float(lost_steady + lost_backlog),
    }


def run(*, quick: bool = False) -> tuple[dict[str, float], list[str]]:
    seconds = 3.0 if quick else 10.0
    backlog = 2_000 if quick else 20_000
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = _measure(f"sqlite:///{Path(folder) / 'events.db'}", seconds, backlog)
    with harness.postgres_database("zt_bench_events") as url:
        results["postgresql"] = _measure(url, seconds, backlog)
    metrics: dict[str, float] = {}
    for backend, figures in results.items():
        metrics[f"webhook_p50_ms_{backend}"] = round(figures["p50"], 1)
        metrics[f"webhook_p99_ms_{backend}"] = round(figures["p99"], 1)
        metrics[f"relay_events_per_s_{backend}"] = round(figures["relay"], 1)
    metrics["webhook_p50_ms"] = max(metrics[f"webhook_p50_ms_{b}"] for b in results)
    metrics["webhook_p99_ms"] = max(metrics[f"webhook_p99_ms_{b}"] for b in results)
    metrics["relay_events_per_s"] = metrics["relay_events_per_s_postgresql"]
    metrics["events_lost"] = sum(r["lost"] for r in results.values())
    defaults = EventSettings()
    notes = [
        f"{RATE} events/s committed one per transaction for {seconds:.0f}s, then a backlog of "
        f"{backlog:,} events in one transaction; one webhook subscription to a loopback "
        "receiver in the same process; the relay and webhook sender as `serve` runs them "
        f"in-process (poll {defaults.relay_poll_seconds}s, batch {defaults.relay_batch_size})",
        "latency = arrival at the receiver - commit, same clock; headline p50/p99 are the "
        "worse of SQLite and PostgreSQL; relay_events_per_s is the PostgreSQL backlog rate "
        "(events published per second, webhook deliveries enqueued in the same pass)",
        "events_lost = committed events the receiver never got, both backends, after a drain",
    ]
    return metrics, notes
