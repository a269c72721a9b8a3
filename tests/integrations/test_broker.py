"""Events reach the real NATS JetStream on loopback, on per-store subjects, once each even when
the relay sends them twice."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from tests.integrations.events import PriceTagged
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent, record_event
from zhongtai.integrations.broker import JetStreamPublisher
from zhongtai.integrations.relay import Relay

NATS_URL = "nats://127.0.0.1:4222"
NATS_SERVER = "/usr/sbin/nats-server"


def _listening() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 4222)) == 0


@pytest.fixture(scope="module")
def nats_server() -> str:
    if not _listening():
        if shutil.which("start-stop-daemon") is None or not shutil.which(NATS_SERVER):
            pytest.fail("nats-server is not running and cannot be started (see docs/events.md)")
        subprocess.run(
            [
                "start-stop-daemon",
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                NATS_SERVER,
                "--",
                "-a",
                "127.0.0.1",
                "-p",
                "4222",
                "-js",
                "-sd",
                "/var/lib/nats-server",
                "-l",
                "/var/log/nats-server.log",
            ],
            check=True,
        )
        deadline = time.monotonic() + 20
        while not _listening():
            if time.monotonic() > deadline:
                pytest.fail("nats-server did not come up on 127.0.0.1:4222")
            time.sleep(0.1)
    return NATS_URL


@pytest.fixture
def stream_name(nats_server: str) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    name, prefix = f"ZTTEST_{suffix}", f"zttest{suffix}"
    yield name, prefix

    async def drop() -> None:
        import nats

        nc = await nats.connect(nats_server)
        try:
            await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    asyncio.run(drop())


async def _messages(name: str) -> list[tuple[str, dict[str, object], str]]:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        info = await js.stream_info(name)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(name, seq)
            out.append(
                (
                    msg.subject,
                    json.loads(msg.data or b"{}"),
                    (msg.headers or {}).get("Nats-Msg-Id", ""),
                )
            )
        return out
    finally:
        await nc.close()


def test_events_land_on_store_and_chain_subjects_once_each(
    test_db: Database, stream_name: tuple[str, str]
) -> None:
    name, prefix = stream_name
    store_id = uuid.uuid4()
    with test_db.writer() as s, s.begin():
        at_store = record_event(
            s, PriceTagged(tag="store"), aggregate_type="tag", aggregate_id="1", store_id=store_id
        )
        chain = record_event(s, PriceTagged(tag="chain"), aggregate_type="tag", aggregate_id="2")
    ids = {str(at_store.id), str(chain.id)}

    async def relay_twice() -> None:
        relay = Relay(
            test_db.writer, publisher=JetStreamPublisher(NATS_URL, stream=name, prefix=prefix)
        )
        await relay.run_once()
        # As after a crash before the publish marker committed: the relay sends them again.
        await asyncio.to_thread(_unpublish, test_db)
        await relay.run_once()
        await relay.publisher.close()

    asyncio.run(relay_twice())
    mine = [m for m in asyncio.run(_messages(name)) if m[2] in ids]
    assert sorted((subject, msg_id) for subject, _, msg_id in mine) == sorted(
        [
            (f"{prefix}.{store_id}.test.price_tagged", str(at_store.id)),
            (f"{prefix}.chain.test.price_tagged", str(chain.id)),
        ]
    )
    assert {doc["payload"]["tag"] for _, doc, _ in mine} == {"store", "chain"}  # type: ignore[index]


def _unpublish(db: Database) -> None:
    with db.writer() as s, s.begin():
        s.execute(update(OutboxEvent).values(published_at=None, published_seq=None))
