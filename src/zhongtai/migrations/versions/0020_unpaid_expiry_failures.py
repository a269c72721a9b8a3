"""unpaid expiry failures: orders the unpaid-order sweeper failed to cancel, retried later

Revision ID: 0020_unpaid_expiry_failures
Revises: 0019_outbox_lean_indexes
Create Date: 2026-11-27 13:08:32.798232

An unpaid order whose cancellation fails (a payment provider down, say) was tried first at
every tick of the sweeper and held up every unpaid order behind it. Now the failure is
recorded here with a retry time that grows with each attempt, and the sweeper goes on with
the next order.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = "0020_unpaid_expiry_failures"
down_revision: str | None = "0019_outbox_lean_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_unpaid_expiry_failures",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("failed_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_unpaid_expiry_failures_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_unpaid_expiry_failures")),
    )


def downgrade() -> None:
    op.drop_table("order_unpaid_expiry_failures")
