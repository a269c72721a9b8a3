"""Running the relay (and a sender after it) from a test, as `zhongtai relay` does in service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from zhongtai.core.db import Database
from zhongtai.integrations.relay import Relay


class Sender(Protocol):
    """What the relay feeds and a test drives: the webhook sender, the stock push sender."""

    async def run_once(self) -> object: ...


def publish_all(db: Database) -> None:
    """Publish every event waiting in the outbox, then hand the relay's lease back."""

    async def run() -> None:
        relay = Relay(db.writer)
        while await relay.run_once():
            pass
        await asyncio.to_thread(relay.release_lease)

    asyncio.run(run())


async def relay_and_send(
    db: Database,
    sender: Sender,
    done: Callable[[], bool],
    *,
    what: str = "the deliveries",
    deadline_s: float = 60,
) -> None:
    """Pass after pass of the relay then the sender until ``done()`` holds; an AssertionError
    naming ``what`` when it does not within ``deadline_s``.

    ``done`` runs off the event loop: it usually reads the database.
    """
    relay = Relay(db.writer)
    deadline = time.monotonic() + deadline_s
    try:
        while not await asyncio.to_thread(done):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not finish within {deadline_s} s")
            await relay.run_once()
            await sender.run_once()
            await asyncio.sleep(0.01)
    finally:
        await asyncio.to_thread(relay.release_lease)
