"""The `zhongtai inventory` commands: audit stock against its ledger, expire reservations."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from zhongtai.core.commands import command_database
from zhongtai.core.jobs import run_job_once
from zhongtai.inventory.reservations import reservation_sweeper
from zhongtai.inventory.verify import verify_stock

app = typer.Typer(
    name="inventory",
    help="Stock: prove balances equal the ledger, expire overdue reservations.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def verify() -> None:
    """Check balance == sum(ledger) and reserved == sum(active holds) for every row.

    Exits 1 and prints the rows that differ; exits 0 when every row agrees.
    """
    with command_database() as db, db.reader() as session:
        differences = verify_stock(session)
    out = Console(highlight=False, soft_wrap=True)
    if not differences:
        out.print("stock verified: every balance equals its ledger and its holds")
        return
    table = Table(title=f"{len(differences)} stock rows differ")
    for column in ("location", "sku", "field", "balance", "expected"):
        table.add_column(column)
    for d in differences:
        table.add_row(str(d.location_id), str(d.sku_id), d.field, str(d.balance), str(d.expected))
    out.print(table)
    raise typer.Exit(code=1)


@app.command("expire-reservations")
def expire() -> None:
    """Release every active reservation past its expiry (safe to run at any time, repeatedly),
    a batch per transaction as `serve`'s sweeper does."""
    with command_database() as db:
        count = run_job_once(db, reservation_sweeper(0))
    typer.echo(f"expired {count} reservations")
