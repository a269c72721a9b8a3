"""Logins and key checks sent by many clients at once, over HTTP to a live API: no more than
the limit of tries is ever judged, however many arrive together. On PostgreSQL, and on a
SQLite file with many writers.

Each client connects from a loopback address of its own (127.x.y.z), which is the address the
API throttles by: a test sends from one address when it means one address, from many when it
means the limit of a username alone."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import TypeVar

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, text

from tests import migrated
from tests.factories import TEST_PASSWORD, TEST_SECRET
from tests.live_server import LiveServer
from tests.races import MANY_CONNECTIONS, all_at_once, until_another_backend_waits_for_a_lock
from zhongtai.app import create_app
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import AuthFailure
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database
from zhongtai.core.settings import Settings

CLIENTS = 32
LIMIT = Settings.model_fields["login_max_failures"].default
PER_ADDRESS = LIMIT * 4
KEY_LIMIT = Settings.model_fields["api_key_max_failures_per_ip"].default
SETTINGS = Settings(secret_key=TEST_SECRET)  # type: ignore[arg-type]
LOGGED_IN = 200
Test = TypeVar("Test", bound=Callable[..., None])


def on_postgres(test: Test) -> Test:
    """A race on PostgreSQL, among the modules that hold many connections (see tests.races)."""
    for mark in MANY_CONNECTIONS:
        test = mark(test)
    return test


@contextmanager
def api_on(url: str) -> Iterator[LiveServer]:
    """The API served by uvicorn on the migrated database ``url``, with as few connections as
    an API process has by default (``db_pool_size``): fewer than the clients, so most of them
    wait for one, and the race holds few of the server's connections."""
    settings = Settings(
        database_url=url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        log_json=False,
        log_level="WARNING",
    )
    db = Database.connect(url, pool_size=settings.db_pool_size, max_overflow=0)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, db=db), host="127.0.0.1", port=0, log_level="warning")
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert serving.is_alive() and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield LiveServer(url=f"http://{host}:{port}", db=db)
    finally:
        server.should_exit = True
        serving.join(timeout=10)
        db.dispose()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with migrated.postgres_database("zt_login_race") as url, api_on(url) as srv:
        yield srv


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The API on a migrated SQLite file: each writer begins IMMEDIATE on a connection of its
    own, as in production (not the test suite's one shared connection)."""
    url = migrated.sqlite_file(tmp_path_factory.mktemp("login_race") / "zhongtai.db")
    with api_on(url) as srv:
        yield srv


_addresses = itertools.count(1)


def fresh_address() -> str:
    """A loopback address no earlier try in this process came from."""
    n = next(_addresses)
    return f"127.0.{n // 250}.{n % 250 + 1}"


@contextmanager
def clients_from(addresses: list[str]) -> Iterator[list[httpx.Client]]:
    """An HTTP client per address, each connecting from it; made before any race starts."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                httpx.Client(timeout=60, transport=httpx.HTTPTransport(local_address=address))
            )
            for address in addresses
        ]


def log_in(client: httpx.Client, server: LiveServer, username: str, password: str) -> int:
    """One login: the status it answers."""
    r = client.post(
        f"{server.url}/api/v1/auth/login", json={"username": username, "password": password}
    )
    if r.status_code == 429:
        assert int(r.headers["Retry-After"]) > 0
    return r.status_code


def logins_at_once(
    server: LiveServer, addresses: list[str], tries: Callable[[int], tuple[str, str]]
) -> list[int]:
    """Login ``i`` with ``tries(i)`` = (username, password) from ``addresses[i]``, all at
    once: the statuses, in order."""
    with clients_from(addresses) as clients:
        return all_at_once(len(clients), lambda i: log_in(clients[i], server, *tries(i)))


def staff_user(db: Database) -> str:
    """A new active staff user whose password is TEST_PASSWORD: her username."""
    username = f"clerk-{uuid.uuid4().hex[:10]}"
    with db.writer() as s, s.begin():
        auth.create_staff_user(
            s,
            username=username,
            display_name="clerk",
            role=Role.HQ_ADMIN,
            password=TEST_PASSWORD,
        )
    return username


def failures_counted(db: Database, **where: str) -> int:
    conditions = [getattr(AuthFailure, column) == value for column, value in where.items()]
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(AuthFailure).where(*conditions)) or 0


@on_postgres
@pytest.mark.parametrize("known", [True, False], ids=["known_user", "unknown_username"])
def test_thirty_two_wrong_passwords_at_once_get_at_most_the_limit_judged(
    server: LiveServer, known: bool
) -> None:
    """Alike for a username that exists and one that does not: the answers do not tell them
    apart."""
    username = staff_user(server.db) if known else f"ghost-{uuid.uuid4().hex[:10]}"
    addresses = [fresh_address() for _ in range(CLIENTS)]
    answers = logins_at_once(server, addresses, lambda i: (username, f"wrong-guess-{i}"))
    assert Counter(answers) == {401: LIMIT, 429: CLIENTS - LIMIT}
    assert failures_counted(server.db, kind="login", subject=username) == LIMIT
    with clients_from([fresh_address()]) as (late,):
        assert log_in(late, server, username, TEST_PASSWORD) == 429


@on_postgres
def test_a_right_password_racing_thirty_one_wrong_ones_is_answered_only_before_the_limit(
    server: LiveServer,
) -> None:
    username = staff_user(server.db)
    right = CLIENTS // 2
    addresses = [fresh_address() for _ in range(CLIENTS)]
    answers = Counter(
        logins_at_once(
            server,
            addresses,
            lambda i: (username, TEST_PASSWORD if i == right else f"wrong-guess-{i}"),
        )
    )
    # Thirty-one wrong passwords: exactly five are judged wrong, whenever the right one came.
    assert answers[401] == LIMIT, answers
    assert failures_counted(server.db, kind="login", subject=username) == LIMIT
    # The right one logs in if it was judged before the fifth wrong one, else it meets the lock
    # like every try after the fifth.
    assert set(answers) <= {401, LOGGED_IN, 429}, answers
    assert answers[LOGGED_IN] <= 1
    assert answers[429] == CLIENTS - LIMIT - answers[LOGGED_IN]


@on_postgres
def test_a_right_password_waiting_for_the_fifth_wrong_one_is_refused_once_that_one_is_counted(
    server: LiveServer,
) -> None:
    username = staff_user(server.db)
    addresses = [fresh_address() for _ in range(LIMIT + 1)]
    with clients_from(addresses) as clients:
        wrong = [log_in(clients[i], server, username, f"wrong-guess-{i}") for i in range(LIMIT - 1)]
        assert wrong == [401] * (LIMIT - 1)
        with server.db.writer() as fifth, ThreadPoolExecutor(1) as pool:
            with pytest.raises(auth.WrongCredentials):
                auth.log_in(
                    fifth,
                    username,
                    "wrong-guess-5",
                    reader=server.db.reader,
                    client_ip=addresses[LIMIT - 1],
                    settings=SETTINGS,
                )
            # The fifth wrong try holds the username's lock, its count not yet committed.
            own_pid = fifth.execute(text("SELECT pg_backend_pid()")).scalar_one()
            right = pool.submit(log_in, clients[LIMIT], server, username, TEST_PASSWORD)
            until_another_backend_waits_for_a_lock(server.db, own_pid)
            fifth.commit()  # as the endpoint answers the 401
            assert right.result(timeout=60) == 429
    assert failures_counted(server.db, kind="login", subject=username) == LIMIT


@on_postgres
def test_wrong_passwords_for_thirty_two_usernames_at_once_from_one_address_get_the_address_limit(
    server: LiveServer,
) -> None:
    """Guessing one password for many usernames from one address is cut off at the address's
    limit (four times a username's), however many are sent together."""
    address = fresh_address()
    spray = uuid.uuid4().hex[:8]
    answers = logins_at_once(
        server, [address] * CLIENTS, lambda i: (f"spray-{spray}-{i}", "Summer2026!")
    )
    assert Counter(answers) == {401: PER_ADDRESS, 429: CLIENTS - PER_ADDRESS}
    assert failures_counted(server.db, kind="login", client_ip=address) == PER_ADDRESS


@on_postgres
def test_unknown_keys_sent_at_once_from_one_address_get_fewer_than_the_limit_answered_401(
    server: LiveServer,
) -> None:
    """Each unknown key is counted in a transaction of its own, committed before the address's
    count is read: the k-th refusal to commit reads at least k, so no more than
    ``KEY_LIMIT - 1`` answer 401 however many are sent together (fewer when later refusals
    commit before an earlier one reads), and every one is counted."""
    address = fresh_address()
    guesses = KEY_LIMIT + CLIENTS
    with clients_from([address] * guesses) as clients:
        answers = all_at_once(
            guesses,
            lambda i: (
                clients[i]
                .get(f"{server.url}/api/v1/auth/me", headers={"X-API-Key": f"ztk_{i:012x}_guess"})
                .status_code
            ),
        )
    statuses = Counter(answers)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[401] <= KEY_LIMIT - 1, statuses
    assert failures_counted(server.db, kind="api_key", client_ip=address) == guesses


def test_on_a_sqlite_file_many_wrong_passwords_at_once_get_at_most_the_limit_judged(
    sqlite_server: LiveServer,
) -> None:
    """SQLite has one writer at a time: a login's transaction, begun once its password is
    checked, holds the database's write lock from its first statement, so the tries are judged
    one after another there, and none waits on another's lock."""
    clients = 12
    username = staff_user(sqlite_server.db)
    addresses = [fresh_address() for _ in range(clients)]
    answers = logins_at_once(sqlite_server, addresses, lambda i: (username, f"wrong-guess-{i}"))
    assert Counter(answers) == {401: LIMIT, 429: clients - LIMIT}
    assert failures_counted(sqlite_server.db, kind="login", subject=username) == LIMIT
