"""A process runs at most as many requests in their endpoints as its pool keeps connections:
the rest wait on the event loop, and a burst of requests opens no connection that is closed
again after it (the pool's overflow is for background work)."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from tests.live_server import live_server
from zhongtai.app import create_app
from zhongtai.core.db import Database
from zhongtai.core.http.deps import request_session
from zhongtai.core.http.routing import api_router
from zhongtai.core.settings import Settings

POOL, OVERFLOW, CLIENTS = 3, 2, 12
SECRET = "request-slots-test-secret-0123456789abcdef"


class Gauge:
    """How many requests are in the probe endpoint now, and the most there ever were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = self.most = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


def test_requests_in_their_endpoints_at_once_never_outnumber_the_pool(
    settings: Settings, database_url: str
) -> None:
    db = Database.connect(database_url, pool_size=POOL, max_overflow=OVERFLOW)
    opened: list[Any] = []
    event.listen(db.engine, "connect", lambda dbapi, record: opened.append(dbapi))
    app = create_app(
        settings.model_copy(update={"db_pool_size": POOL, "db_max_overflow": OVERFLOW}),
        db=db,
        desk_db=db,
    )
    gauge = Gauge()
    probe = api_router()

    @probe.get("/slot-probe")
    def slot_probe(request: Request) -> dict[str, int]:
        gauge.enter()
        try:
            one = request_session(request).execute(text("SELECT 1")).scalar_one()
            time.sleep(0.05)  # long enough for every client's request to arrive meanwhile
        finally:
            gauge.leave()
        return {"one": one}

    app.include_router(probe)
    try:
        with TestClient(app) as client, ThreadPoolExecutor(CLIENTS) as clients:
            for _burst in range(2):
                answers = list(clients.map(lambda _: client.get("/slot-probe"), range(CLIENTS)))
                assert [a.status_code for a in answers] == [200] * CLIENTS
                assert all(a.json() == {"one": 1} for a in answers)
    finally:
        db.dispose()
    assert gauge.most == POOL
    if db.engine.dialect.name == "postgresql":  # SQLite's engine pools by its own rules
        assert len(opened) == POOL


def test_a_slow_upload_waits_for_its_body_without_holding_a_slot(database_url: str) -> None:
    """A till on a poor line sends its batch over seconds: the one slot of this server stays
    free for others meanwhile, and the upload is answered once its body has arrived."""
    body = b'{"reference": "slow-till", "lines": []}'
    with live_server(database_url, secret=SECRET, pool_size=1) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as upload:
            upload.sendall(
                b"POST /api/v1/orders HTTP/1.1\r\nHost: zhongtai\r\n"
                b"Content-Type: application/json\r\nIdempotency-Key: slow-upload-0001\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.3)  # the server has the head and part of the body, and waits
            began = time.monotonic()
            meanwhile = httpx.get(f"{server.url}/api/v1/stores", timeout=10)
            waited = time.monotonic() - began
            assert meanwhile.status_code == 401  # it ran: no credentials, refused at once
            assert waited < 5, waited
            upload.sendall(body[10:])
            answer = upload.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 401"), answer  # the upload ran in its turn, then
