"""The `zhongtai loyalty` commands: prove the points books balance, mature and expire points."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

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

Run = TypeVar("Run")

#: How many members one transaction of a scheduled job takes on: short transactions keep
#: the job from holding members' locks while sales go on.
Batch = Annotated[int, typer.Option(min=1, help="Members per transaction.")]


def _as_of(verb: str) -> Any:
    return typer.Option(help=f"{verb} as of this moment (ISO 8601, UTC if no offset); default now.")


def _in_batches(
    actor: str, batch: int, one_batch: Callable[[Session], Run], members: Callable[[Run], int]
) -> list[Run]:
    """Run a scheduled job's ``one_batch`` in transactions of its own until a batch finds
    fewer than ``batch`` members (there are no more due), recorded as done by ``actor``."""
    token = context.actor.set(actor)
    runs: list[Run] = []
    try:
        with command_database() as db:
            while True:
                with db.writer() as session, session.begin():
                    runs.append(one_batch(session))
                if members(runs[-1]) < batch:
                    return runs
    finally:
        context.actor.reset(token)


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
def expire(now: Annotated[datetime | None, _as_of("Expire")] = None, batch: Batch = 500) -> None:
    """Expire every lot past its date (run daily). Safe to run twice or while sales go on."""
    moment = as_utc(now) if now else utcnow()
    runs = _in_batches(
        "system:loyalty-expire",
        batch,
        lambda session: expire_points(session, moment, limit=batch),
        lambda run: run.members,
    )
    typer.echo(
        f"expired {sum(r.points for r in runs)} points in {sum(r.lots for r in runs)} lots "
        f"of {sum(r.members for r in runs)} members"
    )


@app.command()
def mature(now: Annotated[datetime | None, _as_of("Mature")] = None, batch: Batch = 500) -> None:
    """Make pending points spendable once their orders' return windows have passed (run at
    least daily with ZHONGTAI_POINTS_PENDING_DAYS). Spending matures what is due by itself;
    this keeps balances and points.matured events on time for everyone else."""
    moment = as_utc(now) if now else utcnow()
    runs = _in_batches(
        "system:loyalty-mature",
        batch,
        lambda session: mature_points(session, moment, limit=batch),
        lambda run: run.members,
    )
    typer.echo(
        f"matured {sum(r.points for r in runs)} points in {sum(r.lots for r in runs)} lots "
        f"of {sum(r.members for r in runs)} members"
    )


@app.command("review-tiers")
def review_tiers(
    now: Annotated[datetime | None, _as_of("Review")] = None, batch: Batch = 500
) -> None:
    """Review the tiers whose review date has come: down (or up) to what the year's spend
    earns, each with a new review date (run daily). Upgrades need no job: they happen at once."""
    moment = as_utc(now) if now else utcnow()
    reviewed = _in_batches(
        "system:loyalty-review-tiers",
        batch,
        lambda session: review_due_tiers(session, moment, limit=batch),
        lambda members: members,
    )
    typer.echo(f"reviewed the tiers of {sum(reviewed)} members")
