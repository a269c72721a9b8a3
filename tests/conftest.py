"""Test fixtures: one database per test process (SQLite file or a PostgreSQL database of its
own), migrated with the real Alembic chain (copied from the process's template,
``tests/migrated.py``), and a rollback per test. The API's routes are built once per process
and run on each test's database (``routed`` / ``app``).

Choose the engine with ZHONGTAI_TEST_DB=sqlite (default) or ZHONGTAI_TEST_DB=postgresql;
the PostgreSQL server is ZHONGTAI_TEST_POSTGRES_URL (a maintenance database to connect to).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from tests import migrated
from tests.factories import Factory
from zhongtai.app import routed_app, run_on
from zhongtai.core.db import Database, create_db_engine
from zhongtai.core.settings import Settings
from zhongtai.integrations.couriers.simulated import SimulatedCourierFleet
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.integrations.providers import Providers, provider_secret

BACKEND = os.environ.get("ZHONGTAI_TEST_DB", "sqlite")

# Properties are checked for what they say, never for how fast one example runs: on a shared
# machine a slow example is not a failure (timings belong to benchmarks).
hypothesis.settings.register_profile(
    "zhongtai", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("zhongtai")


def pytest_report_header() -> str:
    return f"zhongtai database backend: {BACKEND}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _check_groups_hold(config, items)
    if BACKEND == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: run with ZHONGTAI_TEST_DB=postgresql")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


def _check_groups_hold(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker of ``--dist loadgroup``, every test of an ``xdist_group`` must carry its
    group (pytest-xdist marks it in the test's id), or the many-connection races would run side
    by side and exhaust the server's connections: stop at once rather than fail at random."""
    if not getattr(config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist did not group {len(lost)} tests marked xdist_group (first: "
            f"{lost[0]}); this pytest and pytest-xdist do not work together: see pyproject.toml"
        )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "postgresql":
        with migrated.postgres_database("zt_test") as url:
            yield url
    else:
        path: Path = tmp_path_factory.mktemp("db") / "zhongtai-test.db"
        url = migrated.sqlite_file(path)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        log_json=False,
        log_level="WARNING",
        secret_key="test-secret-key-0123456789abcdef0123456789",
    )  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def engine_for_tests(database_url: str):  # type: ignore[no-untyped-def]
    engine = create_db_engine(database_url, sqlite_immediate=True)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine_for_tests) -> Iterator[Connection]:  # type: ignore[no-untyped-def]
    """One outer transaction per test, rolled back at the end: tests never see each other."""
    with engine_for_tests.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def test_db(connection: Connection, database_url: str) -> Database:
    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    return Database(
        url=database_url,
        engine=connection.engine,
        write_engine=connection.engine,
        reader=factory,
        writer=factory,
    )


@pytest.fixture
def session(test_db: Database) -> Iterator[Session]:
    with test_db.writer() as s:
        yield s


@pytest.fixture
def factory(session: Session) -> Factory:
    return Factory(session)


@pytest.fixture
def providers(settings: Settings) -> Iterator[Providers]:
    """The sandbox gateway and simulated fleet, holding their callbacks for the test to forward
    (``signed_notifications`` / ``signed_callbacks``): a TestClient app has no port to call."""
    built = Providers(
        payments={
            "sandbox": SandboxPaymentGateway(provider_secret(settings, "sandbox"), notify=False)
        },
        couriers={
            "simulated": SimulatedCourierFleet(provider_secret(settings, "simulated"), auto=False)
        },
    )
    yield built
    built.close()


@pytest.fixture(scope="session")
def routed(settings: Settings) -> FastAPI:
    """The API's routes, built once: FastAPI prepares each route on an app's first requests,
    which would otherwise be most of a short test's time."""
    return routed_app(settings)


@pytest.fixture
def app(routed: FastAPI, settings: Settings, test_db: Database, providers: Providers) -> FastAPI:
    """The API running on this test's database and providers, with fresh state."""
    run_on(routed, settings, test_db, providers=providers, desk_db=test_db)
    return routed


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c
