"""A login verifies its password (a deliberately slow hash) holding no transaction: on SQLite no
other write of the store — a till's sale, an order — waits for it; on PostgreSQL it holds neither
the throttle's advisory locks nor a connection idle in a transaction. The try is judged after the
hash, in one short write transaction, by the password as it stands then.

Each test holds the login inside its password check (``verify_password`` patched to wait for the
test's word) and looks at the database meanwhile."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from tests import migrated
from tests.core.test_throttle_concurrency import (
    LOGGED_IN,
    api_on,
    clients_from,
    failures_counted,
    fresh_address,
    log_in,
    on_postgres,
    staff_user,
)
from tests.factories import TEST_PASSWORD, Factory
from tests.live_server import LiveServer
from tests.races import MANY_CONNECTIONS
from zhongtai.core.auth import credentials
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import StaffUser
from zhongtai.core.auth.roles import Role
from zhongtai.core.db import Database

#: How long another transaction may take while a login verifies its password: ample for a write
#: that waits for nothing, far below SQLite's busy timeout (30 s) a write waiting for the lock
#: would sit out.
UNHINDERED_SECONDS = 5
_PRECOMPUTED_HASH = credentials.hash_password(TEST_PASSWORD)


class HeldPasswordChecks:
    """``credentials.verify_password`` patched: each check says it started, then waits for
    :meth:`release` before it verifies."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = threading.Event()
        self._released = threading.Event()
        self.checked: list[str | None] = []
        verify = credentials.verify_password

        def held(password_hash: str | None, password: str) -> bool:
            self.checked.append(password_hash)
            self.started.set()
            if not self._released.wait(timeout=60):
                raise AssertionError("the test never released the password check")
            return verify(password_hash, password)

        monkeypatch.setattr(credentials, "verify_password", held)

    def release(self) -> None:
        self._released.set()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The API on a migrated SQLite file, each writer beginning IMMEDIATE on a connection of its
    own, as in production."""
    url = migrated.sqlite_file(tmp_path_factory.mktemp("login_hash") / "zhongtai.db")
    with api_on(url) as srv:
        yield srv


@pytest.fixture(scope="module")
def pg_server() -> Iterator[LiveServer]:
    with migrated.postgres_database("zt_login_hash") as url, api_on(url) as srv:
        yield srv


def another_clerk(db: Database) -> None:
    """A write of its own: HQ adds a clerk (her hash made beforehand)."""
    with db.writer() as s, s.begin():
        auth.create_staff_user(
            s,
            username=f"colleague-{uuid.uuid4().hex[:10]}",
            display_name="colleague",
            role=Role.HQ_ADMIN,
            password=TEST_PASSWORD,
            password_hash=_PRECOMPUTED_HASH,
        )


def change_password(db: Database, username: str) -> None:
    with db.writer() as s, s.begin():
        user = s.scalars(select(StaffUser).where(StaffUser.username == username)).one()
        auth.update_staff_user(s, user, password="a-brand-new-password")


def test_on_a_sqlite_file_other_writes_go_on_while_a_login_verifies_its_password(
    sqlite_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    username = staff_user(sqlite_server.db)
    held = HeldPasswordChecks(monkeypatch)
    with ThreadPoolExecutor(2) as pool, clients_from([fresh_address()]) as (client,):
        login = pool.submit(log_in, client, sqlite_server, username, TEST_PASSWORD)
        try:
            assert held.started.wait(timeout=30), "the login never checked a password"
            write = pool.submit(another_clerk, sqlite_server.db)
            written = wait([write], timeout=UNHINDERED_SECONDS).done
        finally:
            held.release()
        assert written, "a write waited for the write lock while a login verified its password"
        write.result()
        assert login.result(timeout=60) == LOGGED_IN


@pytest.mark.parametrize(
    "backend",
    [pytest.param("sqlite"), pytest.param("postgresql", marks=MANY_CONNECTIONS)],
)
def test_a_password_changed_while_a_login_verifies_the_old_one_refuses_and_counts_it(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The try is judged by the password as it stands when the try is judged: the old one,
    verified meanwhile, no longer opens a session (which the change would not have revoked)."""
    server: LiveServer = request.getfixturevalue(
        "sqlite_server" if backend == "sqlite" else "pg_server"
    )
    username = staff_user(server.db)
    held = HeldPasswordChecks(monkeypatch)
    with ThreadPoolExecutor(2) as pool, clients_from([fresh_address()]) as (client,):
        login = pool.submit(log_in, client, server, username, TEST_PASSWORD)
        try:
            assert held.started.wait(timeout=30), "the login never checked a password"
            change = pool.submit(change_password, server.db, username)
            changed = wait([change], timeout=UNHINDERED_SECONDS).done
        finally:
            held.release()
        assert changed, "the password change waited for the login's password check"
        change.result()
        assert login.result(timeout=60) == 401
    assert failures_counted(server.db, kind="login", subject=username) == 1


_IN_TRANSACTION_OR_LOCKED = text(
    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "        AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'), "
    "       (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory')"
)


@pytest.mark.parametrize("known", [True, False], ids=["known_user", "unknown_username"])
@on_postgres
def test_on_postgresql_a_login_verifying_its_password_holds_no_transaction_and_no_lock(
    pg_server: LiveServer, monkeypatch: pytest.MonkeyPatch, known: bool
) -> None:
    username = staff_user(pg_server.db) if known else f"ghost-{uuid.uuid4().hex[:10]}"
    held = HeldPasswordChecks(monkeypatch)
    with ThreadPoolExecutor(1) as pool, clients_from([fresh_address()]) as (client,):
        login = pool.submit(log_in, client, pg_server, username, "wrong-guess")
        try:
            assert held.started.wait(timeout=30), "the login never checked a password"
            with pg_server.db.reader() as probe:  # autocommit: a look at the server as it is
                in_transaction, advisory_locks = probe.execute(_IN_TRANSACTION_OR_LOCKED).one()
        finally:
            held.release()
        assert login.result(timeout=60) == 401
    assert (in_transaction, advisory_locks) == (0, 0)


def test_an_unknown_username_costs_one_password_check_as_a_known_one_does(
    client: TestClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No username-existence oracle by timing: a try for an unknown username verifies the
    password against a stand-in hash, once, as a try for a known one verifies it against hers."""
    factory.staff(Role.HQ_ADMIN, username="someone-real")
    factory.session.commit()
    held = HeldPasswordChecks(monkeypatch)
    held.release()
    for username in ("someone-real", "no-one-at-all"):
        r = client.post("/api/v1/auth/login", json={"username": username, "password": "guess"})
        assert r.status_code == 401
    known, unknown = held.checked
    assert known is not None and unknown is None  # None: verify_password's timing stand-in
