"""`zhongtai simulate` drives a running demo server: orders of the till, pickup and delivery go
all the way to completed, the riders and the wallet calling the server back on their own."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.demo.conftest import loaded_demo_database, small_chain
from tests.live_server import LiveServer, live_server
from zhongtai.cli import app
from zhongtai.core.clock import utcnow
from zhongtai.demo import demo_credentials, write_demo_credentials
from zhongtai.demo.chain_api import ChainApi
from zhongtai.demo.simulated_journeys import SimulationSettings
from zhongtai.demo.simulator import OrderSimulator
from zhongtai.orders.kinds import FulfillmentType, OrderStatus
from zhongtai.orders.models import Order

SECRET = "simulator-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory: Path = tmp_path_factory.mktemp("simulate")
    patch = pytest.MonkeyPatch()
    # Riders of the built-in fleet ride 600 times faster than life: a delivery takes seconds.
    patch.setenv("ZHONGTAI_SANDBOX_COURIER_TIME_SCALE", "600")
    try:
        with (
            loaded_demo_database(directory, small_chain(), history_days=3) as url,
            live_server(url, secret=SECRET) as running,
        ):
            yield running
    finally:
        patch.undo()


def test_a_burst_of_simulated_orders_reaches_completed_on_the_till_pickup_and_delivery(
    server: LiveServer,
) -> None:
    began = utcnow()
    said: list[str] = []
    api = ChainApi(server.url, demo_credentials(small_chain()))
    # Deliveries weigh more than in the default mix, so that a 12 s burst surely has some.
    mix = {"pos": 40, "delivery": 35, "pickup": 15, "ship": 5, "reserve_try": 5}
    settings = SimulationSettings(
        orders_per_minute=150,
        minutes=0.2,
        report_every=5,
        pace=0.1,
        drain_seconds=120,
        seed=5,
        mix=mix,
    )
    try:
        tally = OrderSimulator(api, settings, say=said.append).run()
    finally:
        api.close()

    assert tally.failed == 0, [line for line in said if "failed:" in line]
    assert tally.placed >= 20 and tally.completed + tally.cancelled == tally.placed
    # A progress line every 5 s of the 12 s burst, then the final one; the clock on a line is
    # when it was printed, which a loaded machine can push a second or two past its due time.
    progress = [line for line in said if re.match(r"\[\d\d:\d\d\] placed \d+", line)]
    assert len(progress) >= 3, said
    with server.db.reader() as session:
        placed = session.scalars(select(Order).where(Order.placed_at >= began)).all()
    finished = Counter(o.fulfillment_type for o in placed if o.status is OrderStatus.COMPLETED)
    assert finished[FulfillmentType.IN_STORE] and finished[FulfillmentType.PICKUP], finished
    assert finished[FulfillmentType.DELIVERY], finished
    assert {o.status for o in placed} <= {OrderStatus.COMPLETED, OrderStatus.CANCELLED}


def test_simulate_without_demo_credentials_says_how_to_get_them(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--credentials-file", str(tmp_path / "missing.json"), "--minutes", "1"]
    )
    assert result.exit_code == 1
    assert "run `zhongtai demo`" in result.stderr


def test_simulate_command_runs_a_short_burst_and_prints_its_totals(
    server: LiveServer, tmp_path: Path
) -> None:
    credentials = write_demo_credentials(demo_credentials(small_chain()), tmp_path / "c.json")
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--url",
            server.url,
            "--orders-per-minute",
            "120",
            "--minutes",
            "0.05",
            "--pace",
            "0.1",
            "--seed",
            "9",
            "--credentials-file",
            str(credentials),
        ],
    )
    assert result.exit_code == 0, result.output
    total = result.stdout.strip().splitlines()[-1]
    assert total.startswith("total: placed ") and "failed 0" in total, result.stdout


@pytest.mark.parametrize("mix", [{"teleport": 1}, {"pos": 0, "delivery": 0}])
def test_a_mix_of_unknown_journeys_or_no_weight_is_refused(mix: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="a mix weighs some of pos, delivery"):
        SimulationSettings(orders_per_minute=60, mix=mix)
