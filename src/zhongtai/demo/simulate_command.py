"""`zhongtai simulate`: live orders against a running demo server, one progress line a minute."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zhongtai.demo.chain_api import ChainApi, StepFailed
from zhongtai.demo.credentials import DEFAULT_CREDENTIALS_PATH, read_demo_credentials
from zhongtai.demo.simulated_journeys import SimulationSettings
from zhongtai.demo.simulator import OrderSimulator


def simulate(
    orders_per_minute: Annotated[
        float, typer.Option("--orders-per-minute", min=0.1, help="New orders a minute.")
    ] = 30.0,
    url: Annotated[str, typer.Option(help="The running server (`zhongtai demo`).")] = (
        "http://127.0.0.1:8000"
    ),
    minutes: Annotated[
        float | None,
        typer.Option(help="Place orders this long, then let those under way finish.", min=0),
    ] = None,
    credentials_file: Annotated[
        Path, typer.Option(help="The demo's logins and keys, as `zhongtai demo` wrote them.")
    ] = DEFAULT_CREDENTIALS_PATH,
    pace: Annotated[
        float, typer.Option(help="Scales the seconds stores and customers take per step.", min=0)
    ] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Same seed, same choices.")] = None,
) -> None:
    """Simulate customers, stores, riders and tills on the demo chain through the HTTP API.

    Customers quote, place and pay on the app, mini-program and marketplace; stores accept,
    pick, pack, make pickups ready and hand them over by code; riders of the simulated fleet
    deliver; tills ring up sales. Riders call the server back at its ZHONGTAI_PUBLIC_URL (or
    the URL the simulator calls), so serve where the server can reach itself.
    """
    if not credentials_file.exists():
        typer.echo(
            f"error: no demo credentials at {credentials_file}; "
            "run `zhongtai demo` (or `zhongtai seed-demo`) first",
            err=True,
        )
        raise typer.Exit(code=1)
    api = ChainApi(url, read_demo_credentials(credentials_file))
    settings = SimulationSettings(
        orders_per_minute=orders_per_minute, minutes=minutes, pace=pace, seed=seed
    )
    simulator = OrderSimulator(api, settings, say=typer.echo)
    typer.echo(f"simulating {orders_per_minute:g} orders a minute against {url} (Ctrl-C stops)")
    try:
        simulator.run()
    except StepFailed as failed:
        typer.echo(f"error: {failed}", err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        api.close()
    typer.echo(simulator.summary())
