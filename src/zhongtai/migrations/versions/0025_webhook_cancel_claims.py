"""webhook cancel claims: attempts claimed before they are sent, deliveries cancelled

Revision ID: 0025_webhook_cancel_claims
Revises: 0024_idempotency_subjects
Create Date: 2026-11-27 18:00:00.000000

A deactivated subscription's pending deliveries used to wait forever. Deactivating now ends them
visibly: status ``cancelled`` with a ``cancel_reason``; those left waiting by earlier
deactivations are cancelled here.

The sender now claims a delivery before each attempt (``claim_id``, held until
``next_attempt_at``): a lane has one attempt in flight however many senders run (a re-driven
dead head waits for its lane's open request), an attempt is counted once when it starts, and
only the claimed attempt's outcome is recorded (a relay taking over the lease no longer sends,
nor counts, an attempt of the previous leader's again). The partial index finds a lane's claims.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_webhook_cancel_claims"
down_revision: str | None = "0024_idempotency_subjects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "webhook_deliveries"
_CHECK = "ck_webhook_deliveries_deliverystatus"
_WITHOUT = "status IN ('pending', 'delivered', 'dead')"
_WITH = "status IN ('pending', 'delivered', 'dead', 'cancelled')"
_LANE = ["subscription_id", "aggregate_type", "aggregate_id"]
_PENDING = sa.text("status = 'pending'")
_CLAIMED = sa.text("claim_id IS NOT NULL")


def _drop_lanes_index() -> None:
    # Dropped around the batch: SQLite's table copy would not keep the index partial.
    op.drop_index(
        "ix_webhook_deliveries_lanes",
        table_name=_TABLE,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def _create_lanes_index() -> None:
    op.create_index(
        "ix_webhook_deliveries_lanes",
        _TABLE,
        [*_LANE, "event_seq"],
        unique=False,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def upgrade() -> None:
    _drop_lanes_index()
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("cancel_reason", sa.String(length=200), nullable=True))
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
        batch_op.create_check_constraint(batch_op.f(_CHECK), _WITH)
    _create_lanes_index()
    op.create_index(
        "ix_webhook_deliveries_claims",
        _TABLE,
        _LANE,
        unique=False,
        sqlite_where=_CLAIMED,
        postgresql_where=_CLAIMED,
    )
    # What earlier deactivations left waiting (nothing would ever send it) ends now.
    op.execute(
        "UPDATE webhook_deliveries SET status = 'cancelled', "
        "cancel_reason = 'the subscription was deactivated' "
        "WHERE status = 'pending' AND subscription_id IN "
        "(SELECT id FROM webhook_subscriptions WHERE NOT active)"
    )


def downgrade() -> None:
    # The older schema knows no cancellation: a cancelled delivery is dead there (listed with
    # the dead letters, re-drivable), which is what it is to that version.
    op.execute("UPDATE webhook_deliveries SET status = 'dead' WHERE status = 'cancelled'")
    op.drop_index(
        "ix_webhook_deliveries_claims",
        table_name=_TABLE,
        sqlite_where=_CLAIMED,
        postgresql_where=_CLAIMED,
    )
    _drop_lanes_index()
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
        batch_op.create_check_constraint(batch_op.f(_CHECK), _WITHOUT)
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("claim_id")
    _create_lanes_index()
