"""The relay as a process: killed with SIGKILL mid-stream and restarted, it loses no event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integrations.events import ShelfCounted
from zhongtai.core.db import Database
from zhongtai.core.outbox import record_event

ROOT = Path(__file__).resolve().parents[2]


def _start_relay(url: str, probe: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ZHONGTAI_DATABASE_URL": url,
        "ZHONGTAI_RELAY_LEASE_SECONDS": "1",
        "ZHONGTAI_RELAY_POLL_SECONDS": "0.05",
        "ZHONGTAI_RELAY_BATCH_SIZE": "20",
        "ZHONGTAI_LOG_LEVEL": "WARNING",
        "ZHONGTAI_TEST_RELAY_PROBE_FILE": str(probe),
        "ZHONGTAI_TEST_RELAY_PROBE_DELAY": "0.02",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zhongtai.integrations.cli",
            "relay",
            "--handlers",
            "tests.integrations.relay_probe",
        ],
        env=env,
        cwd=ROOT,
    )


def _commit_events(db: Database, start: int, count: int) -> set[str]:
    ids: set[str] = set()
    for n in range(start, start + count):
        with db.writer() as s, s.begin():
            event = record_event(
                s, ShelfCounted(shelf="kill", n=n), aggregate_type="shelf", aggregate_id=f"K{n % 7}"
            )
            ids.add(str(event.id))
    return ids


def _seen(probe: Path) -> list[str]:
    return probe.read_text().split() if probe.exists() else []


def _wait_until(condition, what: str, limit_s: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def test_every_committed_event_is_delivered_after_sigkill_and_restart(
    own_database_url: str, tmp_path: Path
) -> None:
    probe = tmp_path / "seen.txt"
    db = Database.connect(own_database_url, pool_size=2, max_overflow=0)
    try:
        committed = _commit_events(db, 0, 150)
        relay = _start_relay(own_database_url, probe)
        try:
            _wait_until(lambda: len(_seen(probe)) >= 40, "the relay to deliver the first events")
            committed |= _commit_events(db, 150, 20)
        finally:
            relay.send_signal(signal.SIGKILL)
            relay.wait(timeout=30)
        assert relay.returncode == -signal.SIGKILL
        assert committed - set(_seen(probe)), "the relay finished before it was killed"
        committed |= _commit_events(db, 170, 80)
        restarted = _start_relay(own_database_url, probe)
        try:
            _wait_until(lambda: committed <= set(_seen(probe)), "every committed event")
        finally:
            restarted.terminate()
            restarted.wait(timeout=30)
        assert set(_seen(probe)) == committed
    finally:
        db.dispose()
