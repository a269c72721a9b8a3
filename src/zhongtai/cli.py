"""The `zhongtai` command: serve the API, migrate, create admins and keys, load the demo chain."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from alembic.util.exc import CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session

from zhongtai.core import idempotency
from zhongtai.core import migrate as migrations
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Channel, Permission, Role
from zhongtai.core.db import Database
from zhongtai.core.errors import DomainError
from zhongtai.core.logging import configure_logging
from zhongtai.core.settings import Settings, get_settings
from zhongtai.demo import (
    DEFAULT_CREDENTIALS_PATH,
    build_chain,
    demo_credentials,
    existing_demo_data,
    load_demo_chain,
    read_demo_credentials,
    simulate_command,
    write_demo_credentials,
)
from zhongtai.demo.generator import DEFAULT_MEMBERS, MAX_MEMBERS, STORE_ROLES, summary_counts
from zhongtai.demo.tour import base_url, tour_commands, tour_panel
from zhongtai.guides import cli as guides_cli
from zhongtai.integrations import cli as integrations_cli
from zhongtai.integrations.cli_imports import import_file
from zhongtai.inventory import cli as inventory_cli
from zhongtai.loyalty import cli as loyalty_cli
from zhongtai.members import cli as members_cli
from zhongtai.orders import cli as orders_cli
from zhongtai.stores.models import Location

app = typer.Typer(
    name="zhongtai",
    help="Zhongtai (中台), the omnichannel retail platform. Settings: ZHONGTAI_* variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold passwords and keys
)

#: The demo's team per store: a manager, two clerks and five shopping guides.
STAFF_PER_STORE = len(STORE_ROLES)
SQLITE_ONE_WORKER = (
    "SQLite takes one writer at a time, so more workers only queue on its lock; "
    "serving with 1 worker (use PostgreSQL for --workers > 1)."
)


class CliError(Exception):
    """An expected failure: printed as one line on stderr, exit code 1."""


class DemoAlreadyLoaded(CliError):
    def __init__(self, found: str) -> None:
        super().__init__(
            f"the database already holds demo data ({found}); "
            "run `zhongtai seed-demo --reset` to drop every table and load it again"
        )


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


@contextmanager
def _expected_errors(settings: Settings) -> Iterator[None]:
    """Turns the failures a user can fix (bad URL, taken name, short password) into one line."""
    where = _safe_url(settings.database_url)
    try:
        yield
    except CliError as e:
        raise _fail(str(e)) from None
    except DomainError as e:
        raise _fail(e.detail) from None
    except (ArgumentError, NoSuchModuleError) as e:
        raise _fail(f"bad database URL {settings.database_url!r}: {_first_line(e)}") from None
    except DBAPIError as e:
        raise _fail(f"cannot use the database {where}: {_first_line(e.orig or e)}") from None
    except CommandError as e:
        raise _fail(f"migration failed on {where}: {_first_line(e)}") from None
    except OSError as e:
        raise _fail(f"{where}: {e}") from None


def _require_schema(settings: Settings) -> None:
    if migrations.current_revision(settings.database_url) is None:
        raise CliError("the database has no schema yet; run `zhongtai migrate` first")


@contextmanager
def _unit_of_work(settings: Settings) -> Iterator[Session]:
    """One transaction for one command: the CLI, not the services, decides when to commit."""
    _require_schema(settings)
    db = Database.connect(settings.database_url)
    try:
        with db.writer() as session, session.begin():
            yield session
    finally:
        db.dispose()


@app.callback()
def main(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Overrides ZHONGTAI_DATABASE_URL, e.g. postgresql+psycopg://user@host/db.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Zhongtai (中台): one backend for every touchpoint of a retail chain."""
    if database_url:
        # The environment, not an argument, so uvicorn's worker processes see it too.
        os.environ["ZHONGTAI_DATABASE_URL"] = database_url
    get_settings.cache_clear()


def _serve(settings: Settings, host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

    if workers > 1 and settings.is_sqlite:
        _err().print(f"[yellow]warning:[/] {SQLITE_ONE_WORKER}")
        workers = 1
    loop: Literal["uvloop", "asyncio"] = (
        "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    )
    http: Literal["httptools", "h11"] = (
        "httptools" if importlib.util.find_spec("httptools") else "h11"
    )
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(
        "zhongtai.app:served_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        loop=loop,
        http=http,
        log_config=None,
        access_log=False,  # the request middleware logs each request with its id
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only).", min=1)] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Run the HTTP API with uvicorn (API docs at /docs)."""
    settings = get_settings()
    with _expected_errors(settings):
        _require_schema(settings)
    _serve(settings, host, port, workers, reload)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the latest revision."""
    settings = get_settings()
    with _expected_errors(settings):
        migrations.upgrade(settings.database_url)
        revision = migrations.current_revision(settings.database_url)
    _out().print(f"{_safe_url(settings.database_url)} is at revision {revision}")


@app.command("purge-idempotency-keys")
def purge_idempotency_keys(
    older_than_hours: int = typer.Option(
        0, min=0, help="Age of the records to drop (default: ZHONGTAI_IDEMPOTENCY_TTL_HOURS)."
    ),
) -> None:
    """Drop stored Idempotency-Key responses older than their retention (run it daily)."""
    settings = get_settings()
    hours = older_than_hours or settings.idempotency_ttl_hours
    with _expected_errors(settings), _unit_of_work(settings) as session:
        dropped = idempotency.purge_expired(session, timedelta(hours=hours))
    _out().print(f"dropped {dropped} Idempotency-Key record(s) older than {hours} h")


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="Login name of the new HQ administrator.")],
    password: Annotated[
        str,
        typer.Option(
            help="At least 10 characters; asked for (hidden, twice) when omitted.",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
        ),
    ],
    display_name: Annotated[
        str | None, typer.Option(help="Name shown in the consoles [default: the username].")
    ] = None,
) -> None:
    """Create an HQ administrator (role hq_admin, the whole chain)."""
    settings = get_settings()
    with _expected_errors(settings), _unit_of_work(settings) as session:
        user = auth.create_staff_user(
            session,
            username=username,
            display_name=display_name or username,
            role=Role.HQ_ADMIN,
            password=password,
        )
        user_id = user.id
    _out().print(f"created hq_admin {username!r} (id {user_id})")


@app.command("create-api-key")
def create_api_key(
    channel: Annotated[Channel, typer.Option(help="The touchpoint that will use the key.")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'POS SH001 till 1'.")],
    store: Annotated[
        str | None, typer.Option(help="Store code the key is bound to (required for pos).")
    ] = None,
    terminal: Annotated[str | None, typer.Option(help="Terminal id (required for pos).")] = None,
    scope: Annotated[
        list[Permission] | None,
        typer.Option(help="A permission; repeat for several [default: the channel's defaults]."),
    ] = None,
) -> None:
    """Create a channel API key. The key is printed once and never again."""
    settings = get_settings()
    if channel is Channel.POS and not (store and terminal):
        raise _fail("a pos key is bound to one till: give --store CODE and --terminal ID")
    with _expected_errors(settings), _unit_of_work(settings) as session:
        store_id = None
        if store:
            store_id = session.scalar(select(Location.id).where(Location.code == store))
            if store_id is None:
                raise CliError(f"no location with code {store!r}")
        issued = auth.create_api_key(
            session,
            name=name,
            channel=channel,
            scopes=scope or None,
            store_id=store_id,
            terminal_id=terminal,
        )
        scopes = ", ".join(issued.key.scopes)
    typer.echo(issued.full_key)
    _err().print(
        f"[yellow]Store this {channel.value} key now: it is not shown again[/] "
        f"(scopes: {scopes}). Zhongtai keeps only its hash."
    )


class _ProgressBars:
    """Draws the loader's progress reports as one rich bar per step."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if step not in self._tasks:
            self._tasks[step] = self._progress.add_task(step, total=max(total, 1))
        self._progress.update(self._tasks[step], completed=done if total else 1)


def _seed(
    settings: Settings,
    *,
    seed: int,
    stores: int,
    skus: int,
    staff: int,
    reset: bool,
    members: int = DEFAULT_MEMBERS,
) -> dict[str, Any]:
    """Migrates, then loads the chain in one transaction; the summary of what was loaded."""
    url = settings.database_url
    err = _err()
    with err.status("Migrating the database…"):
        if reset:
            migrations.drop_everything(url)
        migrations.upgrade(url)
    chain = build_chain(seed, stores=stores, skus=skus, staff_per_store=staff, members=members)
    db = Database.connect(url)
    try:
        with db.writer() as session, session.begin():
            found = existing_demo_data(session, chain)
            if found is not None:
                raise DemoAlreadyLoaded(found)
            columns = (TextColumn("{task.description:>18}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, TimeElapsedColumn(), console=err) as progress:
                load_demo_chain(session, chain, progress=_ProgressBars(progress))
    finally:
        db.dispose()
    return demo_credentials(chain) | {"counts": summary_counts(chain), "digest": chain.digest()}


def _print_seeded(summary: dict[str, Any], credentials_file: Path) -> None:
    table = Table(title=f"Demo chain loaded (seed {summary['seed']})", show_header=False)
    for what, count in summary["counts"].items():
        table.add_row(what.replace("_", " "), f"{count:,}")
    out = _out()
    out.print(table)
    usernames = [login["username"] for login in summary["logins"]]
    shown = ", ".join(usernames[:4]) + (" …" if len(usernames) > 4 else "")
    out.print(f"Logins: {shown} (password {summary['password']})")
    out.print(f"All logins, keys and sample barcodes: {credentials_file}")


@app.command("seed-demo")
def seed_demo(
    stores: Annotated[
        int, typer.Option(help="Stores (12 named Shanghai sites, then more).", min=1)
    ] = 12,
    skus: Annotated[int, typer.Option(help="SKUs in the catalog.", min=0)] = 1000,
    members: Annotated[
        int,
        typer.Option(
            help="Members, shared over the stores (phones 19900000001 and up).",
            min=0,
            max=MAX_MEMBERS,
        ),
    ] = DEFAULT_MEMBERS,
    staff_per_store: Annotated[
        int, typer.Option(help="Staff logins per store (manager, clerks, guides).", min=0)
    ] = STAFF_PER_STORE,
    seed: Annotated[int, typer.Option(help="Same seed, same chain: ids, prices and keys.")] = 42,
    reset: Annotated[
        bool, typer.Option(help="Drop EVERY table (all data, not only the demo's) and start again.")
    ] = False,
    credentials_file: Annotated[
        Path, typer.Option(help="Where to write the demo's logins and keys (JSON).")
    ] = DEFAULT_CREDENTIALS_PATH,
) -> None:
    """Load the demo chain: Shanghai stores, a DC, a catalog, staff and channel keys, members
    with 90 days of orders, coupons, points and tiers."""
    settings = get_settings()
    with _expected_errors(settings):
        summary = _seed(
            settings,
            seed=seed,
            stores=stores,
            skus=skus,
            staff=staff_per_store,
            reset=reset,
            members=members,
        )
        write_demo_credentials(summary, credentials_file)
    _print_seeded(summary, credentials_file)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    seed: Annotated[int, typer.Option(help="Seed of the demo chain when it is loaded.")] = 42,
    credentials_file: Annotated[
        Path, typer.Option(help="Where the demo's logins and keys are written (JSON).")
    ] = DEFAULT_CREDENTIALS_PATH,
) -> None:
    """Migrate, load the demo chain if it is missing, show how to try it, and serve."""
    settings = get_settings()
    with _expected_errors(settings):
        try:
            summary = _seed(
                settings, seed=seed, stores=12, skus=1000, staff=STAFF_PER_STORE, reset=False
            )
            write_demo_credentials(summary, credentials_file)
        except DemoAlreadyLoaded:
            if credentials_file.exists():
                summary = read_demo_credentials(credentials_file)
            else:  # loaded with this seed and the default sizes, or the keys shown won't work
                summary = demo_credentials(build_chain(seed))
                write_demo_credentials(summary, credentials_file)
    out, url = _out(), base_url(host, port)
    out.print(tour_panel(summary, url, credentials_file))
    for line in tour_commands(summary, url):
        out.print(line, markup=False, crop=False)
    _serve(settings, host, port, workers=1, reload=False)


# Commands owned by the contexts, mounted here so that `zhongtai --help` lists them all.
app.command("relay")(integrations_cli.relay)
app.command("simulate")(simulate_command.simulate)
app.command("events-doc")(integrations_cli.events_doc)
app.add_typer(integrations_cli.events_app, name="events")
app.add_typer(guides_cli.app, name="guides")
app.add_typer(inventory_cli.app, name="inventory")
app.add_typer(loyalty_cli.app, name="loyalty")
app.add_typer(members_cli.app, name="members")
app.add_typer(orders_cli.app, name="orders")
app.command("import")(import_file)
