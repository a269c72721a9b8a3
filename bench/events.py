"""bench/run events: commit-to-webhook latency under a steady load, relay throughput, nothing lost.

On SQLite (a file of its own) and on PostgreSQL (a database of its own), in this process:

- the event backbone (relay + webhook sender, as `serve` runs it in-process) delivers to a real
  loopback HTTP receiver, in a process of its own, subscribed to one event type;
- a producer process commits one event per transaction at a steady ``RATE`` per second for
  ``SECONDS``; each event's latency is its arrival at the receiver minus its commit (same clock);
- then a backlog of ``BACKLOG`` events is committed at once and timed until the relay has
  published every one (``relay_events_per_s``); on PostgreSQL the relay publishes to the
  NATS JetStream server on this machine (a stream of the bench's own), stored and acknowledged
  by the server before the outbox marks an event published, and the stream is counted after;
- ``events_lost`` counts committed events the receiver never got (after a drain deadline);
- ``backbone_cpu_us_per_event_*`` is this process's CPU time (the relay and the webhook sender;
  the producer and the receiver are processes of their own) during the steady load, per event:
  a figure a busy machine does not bend the way it bends latencies.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import BaseModel
from sqlalchemy import func, select

from bench import harness
from zhongtai.core import migrate
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent, event_type, record_event
from zhongtai.core.settings import Settings
from zhongtai.integrations.runtime import run_event_backbone
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.targets import TargetGuard
from zhongtai.integrations.webhooks import create_subscription, webhook_secrets

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional, as for `serve`
    uvloop = None  # type: ignore[assignment]

RATE = 500
PRODUCERS = 4
EVENT = "bench.shelf_checked"


@event_type(EVENT)
class ShelfChecked(BaseModel):
    """A shelf was checked (benchmark only)."""

    n: int


async def _arrivals_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI endpoint. POST: an event arrived (noted with its arrival time); GET: every arrival."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "POST":
        _ARRIVED.setdefault(json.loads(body)["payload"]["n"], time.time())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    answer = json.dumps(_ARRIVED).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


_ARRIVED: dict[int, float] = {}


def _serve_arrivals(port: Any) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port.value = sock.getsockname()[1]
    # An event-loop server (uvicorn, as integrators commonly run) rather than a thread per
    # connection, which would measure its own interpreter-lock contention, not the sender.
    config = uvicorn.Config(_arrivals_app, log_level="warning", access_log=False, backlog=512)
    uvicorn.Server(config).run(sockets=[sock])


class Receiver:
    """A loopback webhook endpoint in a process of its own, as an integrator's server is, so
    that it does not compete with the relay for this process's interpreter lock."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        port = context.Value("i", 0)
        self.process = context.Process(target=_serve_arrivals, args=(port,), daemon=True)
        self.process.start()
        while not port.value:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port.value}/hook"
        self.client = httpx.Client(timeout=30)

    def arrived(self) -> dict[int, float]:
        return {int(n): t for n, t in self.client.get(self.url).json().items()}

    def count(self, numbers: range) -> int:
        arrived = self.arrived()
        return sum(1 for n in numbers if n in arrived)

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.join(timeout=10)


@contextmanager
def jetstream(stream: str) -> Iterator[Any]:
    """A JetStream stream of the bench's own (dropped after); yields a function counting it."""
    import nats

    async def drop() -> None:
        from nats.js.errors import NotFoundError

        nc = await nats.connect(Settings().broker_url)
        try:
            await nc.jetstream().delete_stream(stream)
        except NotFoundError:
            pass
        finally:
            await nc.close()

    async def count() -> int:
        nc = await nats.connect(Settings().broker_url)
        try:
            info = await nc.jetstream().stream_info(stream)
            return int(info.state.messages)
        finally:
            await nc.close()

    asyncio.run(drop())
    try:
        yield lambda: asyncio.run(count())
    finally:
        asyncio.run(drop())


@contextmanager
def backbone(db: Database, events: EventSettings) -> Iterator[None]:
    """The relay and webhook sender on a thread of their own, as `serve` runs them."""
    # `serve` runs on uvloop when it is installed, and the backbone on the server's loop.
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
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


def _commit_steadily(url: str, seconds: float, results: Connection) -> None:
    """Commit RATE events a second, one per transaction; send back each one's commit time.

    Commits go out on a few connections at once, as from several API workers: one connection
    alone waits for each commit's flush to disk, which caps it below RATE on PostgreSQL.
    """
    db = Database.connect(url, pool_size=PRODUCERS, max_overflow=0)
    committed: dict[int, float] = {}

    def commit(n: int) -> None:
        with db.writer() as session, session.begin():
            record_event(
                session, ShelfChecked(n=n), aggregate_type="shelf", aggregate_id=str(n % 97)
            )
        committed[n] = time.time()

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=PRODUCERS) as pool:
            for n in range(int(RATE * seconds)):
                pause = start + n / RATE - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(commit, n)
    finally:
        db.dispose()
        results.send((committed, time.perf_counter() - start))


def _steady_load(url: str, receiver: Receiver, seconds: float) -> tuple[list[float], int, float]:
    """RATE events a second from a process of its own (as API workers commit them); the
    latencies (ms), how many never arrived, and the commit rate the producer really reached."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    producer = context.Process(target=_commit_steadily, args=(url, seconds, theirs), daemon=True)
    producer.start()
    committed, took = ours.recv()
    producer.join(timeout=30)
    total = len(committed)
    deadline = time.time() + 60
    while receiver.count(range(total)) < total and time.time() < deadline:
        time.sleep(0.2)
    arrived = receiver.arrived()
    latencies = [(arrived[n] - committed[n]) * 1000 for n in committed if n in arrived]
    return latencies, total - len(latencies), total / took


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
        time.sleep(0.2)
    return rate, count - receiver.count(numbers)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(
    url: str, seconds: float, backlog: int, broker_stream: str | None = None
) -> dict[str, float]:
    """One backend's figures; with ``broker_stream`` the relay also publishes to NATS."""
    migrate.upgrade(url)
    db = Database.connect(url, pool_size=10, max_overflow=5)
    receiver = Receiver()
    try:
        # The receiver is on loopback: the bench allows private targets, as a test would.
        with db.writer() as session, session.begin():
            create_subscription(
                session,
                url=receiver.url,
                event_types=[EVENT],
                guard=TargetGuard(allow_private=True),
                sealer=webhook_secrets(Settings()),
            )
        settings = EventSettings(
            webhook_allow_private_targets=True,
            broker_enabled=broker_stream is not None,
            broker_stream=broker_stream or "ZHONGTAI",
        )
        with backbone(db, settings):
            cpu_before = _cpu_seconds()
            latencies, lost_steady, load = _steady_load(url, receiver, seconds)
            cpu = _cpu_seconds() - cpu_before
            rate, lost_backlog = _backlog(db, receiver, int(RATE * seconds), backlog)
    finally:
        receiver.close()
        db.dispose()
    return {
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "relay": rate,
        "load": load,
        "lost": float(lost_steady + lost_backlog),
        "committed": float(len(latencies) + lost_steady + backlog),
        "cpu_us_per_event": cpu / max(1, len(latencies) + lost_steady) * 1e6,
    }


def run(*, quick: bool = False) -> tuple[dict[str, float], list[str]]:
    seconds = 3.0 if quick else 10.0
    backlog = 2_000 if quick else 20_000
    results: dict[str, dict[str, float]] = {}
    loads = [harness.load_average()]
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = _measure(f"sqlite:///{Path(folder) / 'events.db'}", seconds, backlog)
    loads.append(harness.load_average())
    stream = "ZT_BENCH_EVENTS"
    with harness.postgres_database("zt_bench_events") as url, jetstream(stream) as in_stream:
        results["postgresql"] = _measure(url, seconds, backlog, broker_stream=stream)
        results["postgresql"]["in_nats"] = in_stream()
    loads.append(harness.load_average())
    metrics: dict[str, float] = {}
    for backend, figures in results.items():
        metrics[f"webhook_p50_ms_{backend}"] = round(figures["p50"], 1)
        metrics[f"webhook_p99_ms_{backend}"] = round(figures["p99"], 1)
        metrics[f"relay_events_per_s_{backend}"] = round(figures["relay"], 1)
        metrics[f"load_events_per_s_{backend}"] = round(figures["load"], 1)
        metrics[f"backbone_cpu_us_per_event_{backend}"] = round(figures["cpu_us_per_event"])
    metrics["webhook_p50_ms"] = max(metrics[f"webhook_p50_ms_{b}"] for b in results)
    metrics["webhook_p99_ms"] = max(metrics[f"webhook_p99_ms_{b}"] for b in results)
    metrics["relay_events_per_s"] = metrics["relay_events_per_s_postgresql"]
    # Every event committed on PostgreSQL must be in the broker's stream as well.
    committed_pg = int(results["postgresql"]["committed"])
    metrics["nats_events_missing"] = float(committed_pg - results["postgresql"]["in_nats"])
    metrics["events_lost"] = sum(r["lost"] for r in results.values()) + max(
        0.0, metrics["nats_events_missing"]
    )
    defaults = EventSettings()
    notes = [
        f"{RATE} events/s committed one per transaction for {seconds:.0f}s by a producer "
        f"process on {PRODUCERS} connections (load_events_per_s_* is the rate it reached), then "
        f"a backlog of {backlog:,} events in one transaction; one webhook subscription to a "
        "loopback receiver (uvicorn) in a process of its own; the relay and webhook sender "
        "(posting with aiohttp) on uvloop in the bench process as `serve` runs them in-process "
        "(poll "
        f"{defaults.relay_poll_seconds}s idle, {defaults.relay_busy_poll_seconds}s busy, batch "
        f"{defaults.relay_batch_size}, {defaults.webhook_lanes_per_subscription} lanes per "
        "subscription); events spread over 97 aggregates",
        "latency = arrival at the receiver - commit, same clock; headline p50/p99 are the "
        "worse of SQLite and PostgreSQL; on PostgreSQL the relay also publishes every event to "
        "NATS JetStream (nats-server on loopback, a stream of the bench's own, each batch "
        "acknowledged by the server before the outbox marks it published); relay_events_per_s "
        "is the PostgreSQL backlog rate (events stored in JetStream per second, webhook "
        "deliveries enqueued in the same pass); relay_events_per_s_sqlite is without a broker",
        "events_lost = committed events the receiver never got, both backends, after a drain, "
        "plus committed PostgreSQL events missing from the JetStream stream "
        "(nats_events_missing, counted from the stream's state)",
        "what set the tail before: httpx's CPU per request (p50 ~8 s, p99 ~11 s with it), then "
        "the garbage collector's full passes over the started process (100-200 ms each, every "
        "thread stopped); the sender posts with aiohttp, and the backbone freezes the objects "
        "of the started process out of those passes (runtime.settle_long_lived_objects)",
        "the machine is shared with other work: load average (1/5/15 min) "
        f"{loads[0]} before, {loads[1]} between SQLite and PostgreSQL, {loads[2]} after",
    ]
    return metrics, notes
