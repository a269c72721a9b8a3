"""The event backbone's commands: `zhongtai relay` (the relay and webhook sender as a process
of its own), `zhongtai events-doc`, and the `zhongtai events` upkeep (`prune`)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from zhongtai.core import context
from zhongtai.core.commands import command_database
from zhongtai.core.db import Database
from zhongtai.core.logging import configure_logging
from zhongtai.core.settings import get_settings
from zhongtai.integrations.catalogue import DOC_PATH, render_catalogue
from zhongtai.integrations.runtime import prune_once, run_event_backbone
from zhongtai.integrations.settings import EventSettings

app = typer.Typer(add_completion=False)
events_app = typer.Typer(
    name="events",
    help="Upkeep of the event backbone: prune published events and finished webhook deliveries.",
    no_args_is_help=True,
    add_completion=False,
)


@events_app.callback()
def events_group() -> None:
    """Upkeep of the event backbone: prune published events and finished webhook deliveries."""


@events_app.command("prune")
def prune(
    older_than_days: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Retention in days; default ZHONGTAI_EVENT_RETENTION_DAYS (30).",
        ),
    ] = None,
) -> None:
    """Delete published events, and delivered or cancelled webhook deliveries, older than the
    retention.

    Never an unpublished event, nor a pending or dead delivery (nor the event it sends).
    The relay does the same every ZHONGTAI_EVENT_PRUNE_INTERVAL_SECONDS; this runs it now.
    """
    events = EventSettings()
    if older_than_days is not None:
        events = events.model_copy(update={"event_retention_days": older_than_days})
    token = context.actor.set("system:events-prune")
    try:
        with command_database() as db:
            pruned = prune_once(db, events, keep_going=lambda: True)
    finally:
        context.actor.reset(token)
    typer.echo(
        f"pruned {pruned.events} events, {pruned.deliveries} webhook deliveries and "
        f"{pruned.handled} handler receipts older than {events.event_retention_days:g} days"
    )


@app.command("relay")
def relay(
    handlers: Annotated[
        list[str] | None,
        typer.Option(
            "--handlers",
            help="Extra modules to import whose @on_event handlers this relay runs.",
        ),
    ] = None,
) -> None:
    """Deliver outbox events to handlers, the broker and webhooks until stopped (SIGTERM/Ctrl-C)."""
    import importlib

    import zhongtai.app  # noqa: F401  (imports every context, so every handler registers)

    for module in handlers or []:
        importlib.import_module(module)
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    database = Database.connect(settings.database_url, pool_size=4, max_overflow=4)
    try:
        asyncio.run(_run(database))
    finally:
        database.dispose()


@app.command("events-doc")
def events_doc(
    check: Annotated[
        bool, typer.Option(help="Only check that the file is current (exit 1 if not).")
    ] = False,
    path: Annotated[Path, typer.Option(help="Where the catalogue page lives.")] = DOC_PATH,
) -> None:
    """Write the event catalogue (docs/events.md) from the declared event types."""
    text = render_catalogue()
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            typer.echo(f"{path} is stale: run `zhongtai events-doc`", err=True)
            raise typer.Exit(1)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path}")


async def _run(database: Database) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_event_backbone(database, get_settings(), EventSettings(), stop)


if __name__ == "__main__":
    app()
