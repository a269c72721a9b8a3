"""The `zhongtai loyalty` commands: prove the points books balance, mature and expire points."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from zhongtai.core import context
from zhongtai.core.clock import as_utc, utcnow
from zhongtai.core.commands import command_database
from zhongtai.loyalty.expiry import expire_points
from zhongtai.loyalty.maturing import mature_points
from zhongtai.loyalty.tiers import review_due_tiers
from zhongtai.loyalty.verify import verify as verify_points

app = typer.Typer(
    name="loyalty",
    help="Points: prove every balance equals its lots and its entries, mature and expire "
    "points due, review tiers.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def verify() -> None:
    """Check balance == sum(lots' remaining) == sum(entries) for every member, and each lot
    against the points its uses took. Exits 1 and lists what differs; 0 when all agree."""
    with command_database() as db, db.reader() as session:
        report = verify_points(session)
    out = Console(highlight=False, soft_wrap=True)
    if report.clean:
        out.print(
            f"points verified: {report.accounts} accounts and {report.lots} lots agree with "
            "their entries"
        )
        return
    table = Table(title=f"{len(report.discrepancies)} points discrepancies")
    for column in ("member", "lot", "what"):
        table.add_column(column)
    for d in report.discrepancies:
        table.add_row(str(d.member_id or ""), str(d.lot_id or ""), d.what)
    out.print(table)
    raise typer.Exit(code=1)


@app.command()
def expire(
    now: Annotated[
        datetime | None,
        typer.Option(help="Expire as of this moment (ISO 8601, UTC if no offset); default now."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Members per transaction.")] = 500,
) -> None:
    """Expire every lot past its date (run daily). Safe to run twice or while sales go on."""
    moment = as_utc(now) if now else utcnow()
    token = context.actor.set("system:loyalty-expire")
    members = lots = points = 0
    try:
        with command_database() as db:
            while True:
                with db.writer() as session, session.begin():
                    run = expire_points(session, moment, limit=batch)
                members, lots, points = members + run.members, lots + run.lots, points + run.points
                if run.members < batch:
                    break
    finally:
        context.actor.reset(token)
    typer.echo(f"expired {points} points in {lots} lots of {members} members")


@app.command()
def mature(
    now: Annotated[
        datetime | None,
        typer.Option(help="Mature as of this moment (ISO 8601, UTC if no offset); default now."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Members per transaction.")] = 500,
) -> None:
    """Make pending points spendable once their orders' return windows have passed (run at
    least daily with ZHONGTAI_POINTS_PENDING_DAYS). Spending matures what is due by itself;
    this keeps balances and points.matured events on time for everyone else."""
    moment = as_utc(now) if now else utcnow()
    token = context.actor.set("system:loyalty-mature")
    members = lots = points = 0
    try:
        with command_database() as db:
            while True:
                with db.writer() as session, session.begin():
                    run = mature_points(session, moment, limit=batch)
                members, lots, points = members + run.members, lots + run.lots, points + run.points
                if run.members < batch:
                    break
    finally:
        context.actor.reset(token)
    typer.echo(f"matured {points} points in {lots} lots of {members} members")


@app.command("review-tiers")
def review_tiers(
    now: Annotated[
        datetime | None,
        typer.Option(help="Review as of this moment (ISO 8601, UTC if no offset); default now."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Members per transaction.")] = 500,
) -> None:
    """Review the tiers whose review date has come: down (or up) to what the year's spend
    earns, each with a new review date (run daily). Upgrades need no job: they happen at once."""
    moment = as_utc(now) if now else utcnow()
    token = context.actor.set("system:loyalty-review-tiers")
    reviewed = 0
    try:
        with command_database() as db:
            while True:
                with db.writer() as session, session.begin():
                    done = review_due_tiers(session, moment, limit=batch)
                reviewed += done
                if done < batch:
                    break
    finally:
        context.actor.reset(token)
    typer.echo(f"reviewed the tiers of {reviewed} members")
