"""The `zhongtai import` command: load a back-office batch file (CSV or JSON) once."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from zhongtai.core import context
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.commands import command_database
from zhongtai.core.errors import DomainError
from zhongtai.core.settings import get_settings
from zhongtai.integrations import imports
from zhongtai.integrations.import_rules import BatchUnreadable, ImportKind, fingerprint, read_batch

#: The command runs with HQ's reach, as the operator at the machine.
_OPERATOR = Principal(
    kind="staff",
    id=uuid.UUID(int=0),
    name="command line",
    permissions=frozenset(Permission),
    store_ids=None,
)


def import_file(
    kind: Annotated[ImportKind, typer.Argument(help="products, prices or stock")],
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSON file")],
    batch_id: Annotated[
        str | None, typer.Option(help="The batch's id (default: the file name); load once.")
    ] = None,
) -> None:
    """Load a product master, price list or stock snapshot row by row, and print the report.

    Exits 1 when any row was rejected (the good rows are loaded all the same).
    """
    content = path.read_bytes()
    content_type = "application/json" if path.suffix.lower() == ".json" else "text/csv"
    try:
        rows = read_batch(content, content_type)
    except BatchUnreadable as error:
        raise typer.BadParameter(str(error)) from None
    out = Console(highlight=False, soft_wrap=True)
    token = context.actor.set("system:import")
    try:
        with command_database() as db, db.writer() as session, session.begin():
            try:
                loaded = imports.load_batch(
                    session,
                    kind,
                    batch_id or path.name,
                    rows,
                    fingerprint=fingerprint(content),
                    caller=_OPERATOR,
                    currency=get_settings().currency,
                )
            except DomainError as error:
                typer.echo(f"error: {error.detail}", err=True)
                raise typer.Exit(code=1) from None
            batch = loaded.batch
            verb = "loaded" if loaded.created else "was loaded before"
            out.print(
                f"batch {batch.batch_id} {verb}: {batch.rows_loaded} of {batch.rows_total} rows, "
                f"{batch.rows_rejected} rejected"
            )
            for entry in batch.report:
                if entry["outcome"] == "rejected":
                    problems = "; ".join(f"{p['field']}: {p['message']}" for p in entry["problems"])
                    out.print(f"  line {entry['line']}: {problems}")
            rejected = batch.rows_rejected
    finally:
        context.actor.reset(token)
    if rejected:
        raise typer.Exit(code=1)
