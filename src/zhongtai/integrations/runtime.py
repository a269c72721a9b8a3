"""Runs the relay, the webhook sender, the marketplace stock pushes and the pruning of old
events together, in `zhongtai relay` or inside `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from datetime import timedelta

from zhongtai.core import context
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings
from zhongtai.integrations.broker import JetStreamPublisher, NoBroker, Publisher
from zhongtai.integrations.marketplace import marketplace_secrets
from zhongtai.integrations.marketplace_sender import StockPushSender
from zhongtai.integrations.relay import Pruned, Relay, prune_history
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.webhook_sender import WebhookSender
from zhongtai.integrations.webhooks import webhook_secrets

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
    settle_long_lived_objects()
    relay = Relay(
        database.writer,
        reader=database.reader,
        publisher=publisher_for(settings, events),
        batch_size=events.relay_batch_size,
        lease_seconds=events.relay_lease_seconds,
    )
    sender = WebhookSender(
        database.writer, events, sealer=webhook_secrets(settings), reader=database.reader
    )
    stock_pushes = StockPushSender(
        database.writer, sealer=marketplace_secrets(settings), reader=database.reader
    )
    webhooks = asyncio.create_task(sender.run(stop, leading=lambda: relay.leading))
    pruning = asyncio.create_task(prune_periodically(database, events, stop, lambda: relay.leading))
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
            pruning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await webhooks
        with contextlib.suppress(asyncio.CancelledError):
            await pruning
        await sender.close()
        await stock_pushes.close()
        await relay.publisher.close()
        try:
            # Hand the lead over now rather than after the lease runs out.
            await asyncio.to_thread(relay.release_lease)
        except Exception:
            log.warning("could not release the relay lease; it expires by itself", exc_info=True)


def settle_long_lived_objects() -> None:
    """Keep what the process has built so far (modules, the app, SQLAlchemy's mappings: objects
    that live as long as it does) out of the garbage collector's full passes.

    A full pass walks every tracked object while every thread waits; over the ~200,000 objects
    of a started process that took 100-200 ms, a few times a minute under a steady load: the
    webhook latency's 99th percentile. Frozen, a full pass walks only what was made since
    (a few milliseconds). Garbage already there is collected first, so nothing unreachable is
    kept for good. Once per process: a process that froze already is left as it is.
    """
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()


def prune_once(
    database: Database, events: EventSettings, *, keep_going: Callable[[], bool]
) -> Pruned:
    """Prune what is older than the retention (``zhongtai events prune`` and the relay)."""
    before = utcnow() - timedelta(days=events.event_retention_days)
    return prune_history(database.writer, before=before, keep_going=keep_going)


async def prune_periodically(
    database: Database, events: EventSettings, stop: asyncio.Event, leading: Callable[[], bool]
) -> None:
    """Every ``event_prune_interval_seconds``, the leading relay prunes old events (one relay
    prunes, however many `serve` workers run); a failed run is logged and tried next time.

    The first run comes a minute after the start (or sooner, with a shorter interval), so that
    a server restarted more often than the interval still prunes.
    """
    every = events.event_prune_interval_seconds
    if every <= 0:
        return
    pause = min(every, 60.0)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
        if stop.is_set() or not leading():
            continue
        pause = every
        try:
            pruned = await asyncio.to_thread(
                prune_once, database, events, keep_going=lambda: not stop.is_set()
            )
            if pruned.events or pruned.deliveries:
                log.info(
                    "pruned old events",
                    extra={
                        "events": pruned.events,
                        "deliveries": pruned.deliveries,
                        "handled": pruned.handled,
                    },
                )
        except Exception:
            log.exception("pruning old events failed; trying again next time")
