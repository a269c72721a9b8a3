"""The `zhongtai orders` commands: the daily settlement for finance, and the sweepers `serve`
runs (unpaid orders, orders left at the counter, parcels nobody confirmed) run once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from zhongtai.core.clock import utcnow
from zhongtai.core.commands import command_database
from zhongtai.core.jobs import PeriodicJob, run_job_once
from zhongtai.core.settings import get_settings
from zhongtai.fulfillment.parcel_receipts import parcel_receipts
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.integrations.providers import built_in_providers
from zhongtai.orders.expiry_failures import failed_since
from zhongtai.orders.settlement import settlement_csv, settlement_for_day
from zhongtai.orders.uncollected_orders import uncollected_order_sweeper
from zhongtai.orders.unpaid_orders import unpaid_order_sweeper
from zhongtai.stores.models import Location

app = typer.Typer(
    name="orders",
    help="Orders: the daily settlement for finance; expiry of unpaid and uncollected orders, "
    "receipt of unconfirmed parcels.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def settlement(
    day: Annotated[str, typer.Option(help="Business day, YYYY-MM-DD.")],
    store: Annotated[
        list[str] | None, typer.Option(help="Store code (repeatable; default: every store).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Count only what was recorded by then (ISO time with offset)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the CSV here (default: stdout).")] = None,
) -> None:
    """Money taken and given back per store, channel and tender for a business day, as CSV."""
    try:
        business_day = date.fromisoformat(day)
        cut = datetime.fromisoformat(as_of) if as_of else None
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if cut is not None and cut.tzinfo is None:
        raise typer.BadParameter("--as-of needs a UTC offset, e.g. 2026-11-26T04:00:00+08:00")
    with command_database() as db, db.reader() as session:
        store_ids = None
        if store:
            found = dict(
                session.execute(
                    select(Location.code, Location.id).where(Location.code.in_(store))
                ).all()
            )
            missing = sorted(set(store) - set(found))
            if missing:
                raise typer.BadParameter(f"no store {', '.join(missing)}")
            store_ids = list(found.values())
        text = settlement_csv(
            settlement_for_day(session, business_day, store_ids=store_ids, as_of=cut)
        )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        Console(stderr=True).print(f"wrote {out}")


@app.command("expire-unpaid")
def expire_unpaid() -> None:
    """Cancel orders still unpaid past their deadline and release their stock (`serve` does it
    every 30 s)."""
    _cancel_with(unpaid_order_sweeper, "unpaid orders")


@app.command("cancel-uncollected")
def cancel_uncollected() -> None:
    """Cancel and refund orders left at the counter past its hold, and put their stock back on
    sale (`serve` does it every 30 s)."""
    _cancel_with(uncollected_order_sweeper, "orders left at the counter")


@app.command("confirm-parcels")
def confirm_parcels() -> None:
    """Complete parcels nobody confirmed delivered `ZHONGTAI_PARCEL_CONFIRM_DAYS` after they
    shipped (`serve` does it every 30 s)."""
    with command_database() as db:
        confirmed = run_job_once(db, parcel_receipts(0))
    Console(highlight=False).print(f"confirmed {confirmed} parcels received")


def _cancel_with(
    sweeper: Callable[[float, Mapping[str, PaymentProvider]], PeriodicJob], what: str
) -> None:
    """Run a sweeper that cancels orders one per transaction until none is due; say how many
    were cancelled and how many failed (to be tried again)."""
    providers = built_in_providers(get_settings())
    began = utcnow()
    try:
        with command_database() as db:
            dealt = run_job_once(db, sweeper(0, providers.payments))
            with db.reader() as session:
                failed = failed_since(session, began)
    finally:
        providers.close()
    console = Console(highlight=False)
    console.print(f"cancelled {max(dealt - failed, 0)} {what}")
    if failed:
        console.print(
            f"{failed} could not be cancelled and will be tried again "
            "(order_expiry_failures: attempts, last error, next try)"
        )
