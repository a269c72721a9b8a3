"""The `zhongtai guides` commands: rebuild recommendations, make the day's task lists, mature
pending commission and close a commission month."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from zhongtai.core import context
from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.commands import command_database
from zhongtai.core.errors import DomainError
from zhongtai.guides.api_common import parse_month
from zhongtai.guides.commission import close_month
from zhongtai.guides.jobs import generate_todays_tasks
from zhongtai.guides.ledger import mature_commission
from zhongtai.guides.recommendation_rules import DEFAULT_PARAMETERS
from zhongtai.guides.recommendations import LOOKBACK_DAYS, build_recommendations

app = typer.Typer(
    name="guides",
    help="Shopping guides: recommendations, daily tasks, commission maturing and month closing.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def guides() -> None:
    """Shopping guides: recommendations, daily tasks, commission maturing and month closing."""


@app.command("build-recommendations")
def build_recommendations_command(
    now: Annotated[
        datetime | None,
        typer.Option(help="Build as of this moment (ISO 8601, UTC if no offset); default now."),
    ] = None,
    lookback_days: Annotated[
        int, typer.Option(min=1, help="Days of members' purchases read.")
    ] = LOOKBACK_DAYS,
    top_k: Annotated[
        int, typer.Option(min=1, help="Neighbours kept per SKU.")
    ] = DEFAULT_PARAMETERS.top_k,
) -> None:
    """Rebuild every SKU's co-purchase neighbours and the popular lists (chain-wide and per
    store) from members' purchases (run nightly). Guides keep seeing the old lists until the
    new ones are committed, all at once."""
    moment = as_utc(now) if now else utcnow()
    token = context.actor.set("system:guides-build-recommendations")
    try:
        with command_database() as db, db.writer() as session, session.begin():
            summary = build_recommendations(
                session, now=moment, lookback_days=lookback_days, top_k=top_k
            )
    finally:
        context.actor.reset(token)
    check = summary.check
    chosen = summary.parameters
    typer.echo(
        f"built recommendations as of {summary.built_at:%Y-%m-%d %H:%M} UTC from "
        f"{summary.orders_read} orders ({summary.lines_read} lines) of {summary.members} "
        f"members since {summary.history_since:%Y-%m-%d}: {summary.neighbour_pairs} neighbours "
        f"of {summary.skus} SKUs, {summary.popular_rows} popular entries, "
        f"in {summary.duration_ms} ms"
    )
    if check is None:
        typer.echo("self-check: no member has two orders yet; the default blend is kept")
        return
    typer.echo(
        f"self-check on {check.model.customers} members' last orders: hit rate@10 "
        f"{check.model.hit_rate:.3f} (popular list alone {check.popularity.hit_rate:.3f}), "
        f"recall@10 {check.model.recall:.3f}, with her own purchases weighing "
        f"{chosen.repeat_weight:g} and popularity {chosen.popular_weight:g}"
    )


@app.command("generate-tasks")
def generate_tasks_command() -> None:
    """Put today's tasks (each store's local day) on every active guide's list; running it
    again adds nothing (`serve` runs it hourly)."""
    token = context.actor.set("system:guides-generate-tasks")
    try:
        with command_database() as db, db.writer() as session, session.begin():
            added = generate_todays_tasks(session)
    finally:
        context.actor.reset(token)
    typer.echo(f"{added} tasks added")


@app.command("mature-commission")
def mature_commission_command() -> None:
    """Make pending commission payable where the return window has closed (`serve` does it
    every 30 s)."""
    token = context.actor.set("system:guides-mature-commission")
    try:
        with command_database() as db, db.writer() as session, session.begin():
            matured = mature_commission(session, now=utcnow())
    finally:
        context.actor.reset(token)
    typer.echo(f"{matured} commission entries became payable")


@app.command("close-month")
def close_month_command(
    month: Annotated[str, typer.Argument(help="The month to close, YYYY-MM.")],
) -> None:
    """Close a commission month past its return window: pending commission matures and each
    guide with a target gets her tier bonus; later entries go to the next month."""
    token = context.actor.set("system:guides-close-month")
    try:
        start = parse_month(month)
        with command_database() as db, db.writer() as session, session.begin():
            bonuses = close_month(session, start, now=utcnow())
    except DomainError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from error
    finally:
        context.actor.reset(token)
    total = sum(b.amount for b in bonuses)
    typer.echo(f"closed {start:%Y-%m}: {len(bonuses)} target bonuses, {total} fen")
