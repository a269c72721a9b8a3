"""Real loopback HTTP servers for integration tests, and the receiver that webhook, marketplace
and provider callbacks are sent to: it records requests, fails or stalls on demand."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean of access lines."""

    def answer_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


class _LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    # Concurrent senders connect at once; a short backlog would drop SYNs and stall a second.
    request_queue_size = 64


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` answering on a free loopback port from a thread of its own: the base URL.

    A handler that waits on the test (a stalled endpoint) must be released before this exits.
    """
    server = _LoopbackServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    #: path -> how many more requests to answer 500 (then 204)
    failures_left: dict[str, int] = field(default_factory=dict)
    #: paths whose requests wait until ``release`` is set
    stalled: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path in receiver.stalled:
                receiver.release.wait(timeout=60)
            with receiver.lock:
                left = receiver.failures_left.get(self.path, 0)
                if left:
                    receiver.failures_left[self.path] = left - 1
                else:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
            self.answer_empty(500 if left else 204)

    with serving(Handler) as url:
        receiver.url = url
        try:
            yield receiver
        finally:
            receiver.release.set()
