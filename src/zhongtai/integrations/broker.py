"""The broker publisher interface and its NATS JetStream implementation.

The relay hands every published event to one :class:`Publisher`. A Kafka publisher would
implement the same two methods. Subjects are ``zhongtai.<store id | chain>.<event type>``;
the JetStream message id is the event id, so a redelivery after a crash is dropped by the
server's duplicate window instead of reaching consumers twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from zhongtai.integrations.handlers import PublishedEvent

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

SUBJECT_PREFIX = "zhongtai"
DEFAULT_STREAM = "ZHONGTAI"


def subject_for(event: PublishedEvent, prefix: str = SUBJECT_PREFIX) -> str:
    """``zhongtai.<store id>.<type>`` for a store's event, ``zhongtai.chain.<type>`` otherwise."""
    where = str(event.store_id) if event.store_id else "chain"
    return f"{prefix}.{where}.{event.type}"


class Publisher(Protocol):
    """Where the relay sends events. ``publish`` returns once the broker has stored them all."""

    async def publish(self, events: Sequence[PublishedEvent]) -> None: ...

    async def close(self) -> None: ...


class NoBroker:
    """The embedded default: no broker configured, nothing to send."""

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        return None

    async def close(self) -> None:
        return None


class JetStreamPublisher:
    """Publishes to NATS JetStream, creating the stream on first use if it is missing."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = DEFAULT_STREAM,
        prefix: str = SUBJECT_PREFIX,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.timeout = timeout
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None

    async def _context(self) -> JetStreamContext:
        if self._js is not None:
            return self._js
        import nats
        from nats.js.errors import NotFoundError

        self._nc = await nats.connect(
            self.url, connect_timeout=self.timeout, max_reconnect_attempts=-1
        )
        js = self._nc.jetstream(timeout=self.timeout)
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])
        self._js = js
        return js

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        if not events:
            return
        js = await self._context()
        acks = [
            await js.publish_async(
                subject_for(event, self.prefix),
                json.dumps(event.envelope(), separators=(",", ":")).encode(),
                stream=self.stream,
                headers={"Nats-Msg-Id": str(event.id)},
            )
            for event in events
        ]
        # Each future resolves with the server's ack, or raises; a failure fails the batch and
        # the relay sends it again (the message ids make the resend harmless).
        await asyncio.wait_for(asyncio.gather(*acks), timeout=self.timeout * 2)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        self._nc = None
        self._js = None
