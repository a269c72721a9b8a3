"""A loopback webhook receiver that knows each request by its event's tag and aggregate: it
counts the requests of each tag, how many of one aggregate are open at once, and fails, stalls
or slows chosen tags on demand (events of :class:`tests.integrations.events.PriceTagged`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.integrations.receiver import QuietHandler, serving


@dataclass
class TagReceiver:
    url: str = ""
    #: The tag of every request, in the order they came in (before any stall or answer).
    started: list[str] = field(default_factory=list)
    #: (aggregate id, tag) of every 2xx answer, in the order they were answered.
    arrived: list[tuple[str, str]] = field(default_factory=list)
    #: tag -> how many more of its requests to answer 500 (then 204)
    failures_left: dict[str, int] = field(default_factory=dict)
    #: tags whose requests wait until ``release`` is set
    stalled: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    #: how long every request takes to answer (widens the window in which lanes are open)
    delay_s: float = 0.0
    #: aggregate id -> requests of it open now / the most that were open at once
    open_now: dict[str, int] = field(default_factory=dict)
    most_open: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, tag: str) -> int:
        with self.lock:
            return self.started.count(tag)

    def tags(self, aggregate: str) -> list[str]:
        with self.lock:
            return [tag for agg, tag in self.arrived if agg == aggregate]

    def most_open_in_one_lane(self) -> int:
        with self.lock:
            return max(self.most_open.values(), default=0)

    def answer(self, body: bytes) -> int:
        doc = json.loads(body)
        aggregate, tag = doc["aggregate_id"], doc["payload"]["tag"]
        with self.lock:
            self.started.append(tag)
            self.open_now[aggregate] = self.open_now.get(aggregate, 0) + 1
            self.most_open[aggregate] = max(
                self.most_open.get(aggregate, 0), self.open_now[aggregate]
            )
        try:
            if tag in self.stalled:
                self.release.wait(timeout=60)
            if self.delay_s:
                time.sleep(self.delay_s)
            with self.lock:
                left = self.failures_left.get(tag, 0)
                if left:
                    self.failures_left[tag] = left - 1
                    return 500
                self.arrived.append((aggregate, tag))
                return 204
        finally:
            with self.lock:
                self.open_now[aggregate] -= 1


@contextmanager
def tag_receiver() -> Iterator[TagReceiver]:
    receiver = TagReceiver()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.answer_empty(receiver.answer(body))

    with serving(Handler) as url:
        receiver.url = f"{url}/tags"
        try:
            yield receiver
        finally:
            receiver.release.set()
