"""The `zhongtai members` commands: repair identities stored under an old spelling."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from zhongtai.core import context
from zhongtai.core.commands import command_database
from zhongtai.core.settings import get_settings
from zhongtai.members.pii import PiiKeyInvalid, cipher_for
from zhongtai.members.spellings import Outcome, respell_identities

app = typer.Typer(
    name="members",
    help="Members: repair identities stored before spellings were normalised.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def members() -> None:
    """Members: repair identities stored before spellings were normalised."""


@app.command("respell-identities")
def respell_identities_command(
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the changes (default: only list them).")
    ] = False,
) -> None:
    """List identities stored under a spelling lookups no longer reach (full-width digits
    from before input was normalised), and with --apply move each to its one spelling.

    Needs the PII key the identities were stored with (ZHONGTAI_PII_KEY). Exits 1 while a
    collision remains: two members hold one identity, so staff should merge them and run
    the command again.
    """
    try:
        cipher = cipher_for(get_settings())
    except PiiKeyInvalid as bad:
        raise typer.BadParameter(str(bad)) from None
    token = context.actor.set("system:respell-identities")
    try:
        with command_database() as db, db.writer() as session:
            found = respell_identities(session, cipher, apply=apply)
            if apply:
                session.commit()
            else:
                session.rollback()
    finally:
        context.actor.reset(token)
    out = Console(highlight=False, soft_wrap=True)
    if not found:
        out.print("every identity is stored under its one spelling")
        return
    out.print(f"{len(found)} identities under an old spelling:")
    for r in found:
        held = f" held by member {r.other_member_id}" if r.other_member_id else ""
        shown = f"{r.kind.value} {r.shown or '(unreadable)'}"
        out.print(f"  {r.outcome.value}: member {r.member_id} {shown}{held}")
    counts = {o: sum(r.outcome is o for r in found) for o in Outcome}
    summary = ", ".join(f"{n} {o.value}" for o, n in counts.items() if n)
    out.print(f"{'applied' if apply else 'would apply (run with --apply)'}: {summary}")
    if counts[Outcome.COLLISION]:
        raise typer.Exit(code=1)
