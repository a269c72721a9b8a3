"""Upgrading ends what earlier deactivations left waiting (a deactivated subscription's pending
deliveries are cancelled, with the reason) and leaves everything else as it was; downgrading
makes cancelled deliveries dead, which the older version lists and re-drives."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.migrating import database_at, webhook_subscriptions
from zhongtai.core import migrate
from zhongtai.core.clock import utcnow
from zhongtai.core.db import UTCDateTime, create_db_engine

BEFORE = "0024_idempotency_subjects"
CANCELLING = "0025_webhook_cancel_claims"

_SUBSCRIPTIONS = webhook_subscriptions(sa.column("secret_sealed", sa.LargeBinary()))
_DELIVERIES = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.Uuid()),
    sa.column("subscription_id", sa.Uuid()),
    sa.column("event_id", sa.Uuid()),
    sa.column("event_seq", sa.BigInteger()),
    sa.column("event_type", sa.String()),
    sa.column("aggregate_type", sa.String()),
    sa.column("aggregate_id", sa.String()),
    sa.column("status", sa.String()),
    sa.column("attempts", sa.Integer()),
    sa.column("next_attempt_at", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)


@pytest.fixture
def url_before(tmp_path: Path) -> Iterator[str]:
    with database_at(BEFORE, tmp_path, "cancel") as url:
        yield url


def test_deliveries_left_waiting_by_a_deactivation_are_cancelled_on_upgrade(
    url_before: str,
) -> None:
    url = url_before
    engine = create_db_engine(url)
    now = utcnow()
    active, inactive = uuid.uuid4(), uuid.uuid4()
    ids = {key: uuid.uuid4() for key in ("waiting", "live", "dead", "delivered")}
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(_SUBSCRIPTIONS),
                [
                    {
                        "id": sub_id,
                        "url": "https://erp.example.com/hook",
                        "description": "",
                        "event_types": ["order.paid"],
                        "store_ids": None,
                        "secret_sealed": b"sealed",
                        "active": sub_id == active,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for sub_id in (active, inactive)
                ],
            )
            conn.execute(
                sa.insert(_DELIVERIES),
                [
                    {
                        "id": ids[key],
                        "subscription_id": sub_id,
                        "event_id": uuid.uuid4(),
                        "event_seq": seq,
                        "event_type": "order.paid",
                        "aggregate_type": "order",
                        "aggregate_id": "O1",
                        "status": status,
                        "attempts": 1,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for seq, (key, sub_id, status) in enumerate(
                        [
                            ("waiting", inactive, "pending"),
                            ("live", active, "pending"),
                            ("dead", inactive, "dead"),
                            ("delivered", inactive, "delivered"),
                        ]
                    )
                ],
            )

        migrate.upgrade(url, CANCELLING)
        deliveries = sa.table(
            "webhook_deliveries",
            sa.column("id", sa.Uuid()),
            sa.column("status", sa.String()),
            sa.column("cancel_reason", sa.String()),
            sa.column("claim_id", sa.Uuid()),
        )
        with engine.connect() as conn:
            rows = {
                row.id: (row.status, row.cancel_reason, row.claim_id)
                for row in conn.execute(sa.select(deliveries))
            }
        assert rows == {
            ids["waiting"]: ("cancelled", "the subscription was deactivated", None),
            ids["live"]: ("pending", None, None),
            ids["dead"]: ("dead", None, None),
            ids["delivered"]: ("delivered", None, None),
        }

        migrate.downgrade(url, BEFORE)
        with engine.connect() as conn:
            statuses = dict(conn.execute(sa.select(_DELIVERIES.c.id, _DELIVERIES.c.status)).all())
            columns = {c["name"] for c in sa.inspect(conn).get_columns("webhook_deliveries")}
        assert statuses == {
            ids["waiting"]: "dead",
            ids["live"]: "pending",
            ids["dead"]: "dead",
            ids["delivered"]: "delivered",
        }
        assert not {"claim_id", "cancel_reason"} & columns
        migrate.upgrade(url)  # and up again
    finally:
        engine.dispose()
