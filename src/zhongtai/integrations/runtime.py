"""Runs the relay, the webhook sender and the marketplace stock pushes together, in
`zhongtai relay` or inside `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from zhongtai.core import context
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
from zhongtai.integrations.broker import JetStreamPublisher, NoBroker, Publisher
from zhongtai.integrations.marketplace_sender import StockPushSender
from zhongtai.integrations.relay import Relay
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhook_sender import WebhookSender

log = logging.getLogger(__name__)


def publisher_for(settings: Settings, events: EventSettings) -> Publisher:
    if not events.broker_enabled:
        return NoBroker()
    return JetStreamPublisher(settings.broker_url, stream=events.broker_stream)


async def run_event_backbone(
    database: Database, settings: Settings, events: EventSettings, stop: asyncio.Event
) -> None:
    """Relay passes, webhook attempts and stock pushes until ``stop`` is set.

    The webhook sender runs as a loop of its own beside the relay, refilling as soon as attempts
    finish; the relay wakes it when it enqueues deliveries. Only the lease holder sends webhooks,
    so N `serve` workers do not send each delivery N times.
    """
    token = context.actor.set("system:relay")
    relay = Relay(
        database.writer,
        reader=database.reader,
        publisher=publisher_for(settings, events),
        batch_size=events.relay_batch_size,
        lease_seconds=events.relay_lease_seconds,
    )
    sender = WebhookSender(database.writer, events, reader=database.reader)
    stock_pushes = StockPushSender(database.writer, reader=database.reader)
    webhooks = asyncio.create_task(sender.run(stop, leading=lambda: relay.leading))
    try:
        while not stop.is_set():
            published = 0
            try:
                published = await relay.run_once()
                if published:
                    sender.wake()
                if relay.leading:
                    await stock_pushes.run_once()
            except Exception:
                # The broker or the database is away: nothing was marked published, so
                # nothing is lost; say so, wait, try again.
                log.exception("event relay pass failed")
            if published < events.relay_batch_size:
                # While events keep coming, look again soon; when idle, poll slowly.
                pause = events.relay_busy_poll_seconds if published else events.relay_poll_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
    finally:
        context.actor.reset(token)
        if stop.is_set():
            sender.wake()
        else:
            webhooks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await webhooks
        await sender.close()
        await stock_pushes.close()
        await relay.publisher.close()
        try:
            # Hand the lead over now rather than after the lease runs out.
            await asyncio.to_thread(relay.release_lease)
        except Exception:
            log.warning("could not release the relay lease; it expires by itself", exc_info=True)
