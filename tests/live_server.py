"""A real uvicorn server on a free loopback port, for tests that need true parallel requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from zhongtai.app import create_app
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings


@dataclass
class LiveServer:
    url: str
    db: Database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(database_url: str, *, secret: str, pool_size: int = 40) -> Iterator[LiveServer]:
    """The app on uvicorn in a thread; ``pool_size`` connections (and as many request slots)."""
    settings = Settings(
        database_url=database_url,
        secret_key=secret,  # type: ignore[arg-type]
        log_json=False,
        log_level="WARNING",
        db_pool_size=pool_size,
        db_max_overflow=10,
    )
    db = Database.connect(database_url, pool_size=pool_size, max_overflow=10)
    app = create_app(settings, db=db)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", limit_concurrency=200
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("live server did not start")
    try:
        yield LiveServer(url=url, db=db)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.dispose()
