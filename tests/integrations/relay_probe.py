"""A handler for the relay-process tests: appends each event id it sees to a file, durably."""

from __future__ import annotations

import os
import time

from sqlalchemy.orm import Session

from tests.integrations import events  # noqa: F401  (declares the test event types)
from zhongtai.integrations.handlers import PublishedEvent, on_event

PROBE_FILE = os.environ["ZHONGTAI_TEST_RELAY_PROBE_FILE"]
# A slow consumer, so that the test's SIGKILL lands while events are still in flight.
DELAY_S = float(os.environ.get("ZHONGTAI_TEST_RELAY_PROBE_DELAY", "0"))


@on_event("test.shelf_counted", consumer="tests.relay_probe")
def append_event_id(event: PublishedEvent, _session: Session) -> None:
    time.sleep(DELAY_S)
    with open(PROBE_FILE, "a") as out:
        out.write(f"{event.id}\n")
        out.flush()
        os.fsync(out.fileno())
