"""order expiry failures: the unpaid-order sweeper's failures table serves the uncollected-order
sweeper too

Revision ID: 0029_order_expiry_failures
Revises: 0028_missed_promises
Create Date: 2026-11-28 12:40:00.000000

`serve` now also cancels orders left uncollected at the counter past its hold. A cancellation
that fails (a payment provider down while refunding) is recorded and retried later, as the
unpaid-order sweeper's are: ``order_unpaid_expiry_failures`` becomes ``order_expiry_failures``
(its rows kept), one table for both, as an order is never both unpaid and waiting at the
counter.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = "0029_order_expiry_failures"
down_revision: str | None = "0028_missed_promises"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "order_id, attempts, retry_at, last_error, failed_at"


def _create(name: str) -> None:
    op.create_table(
        name,
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("failed_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f(f"fk_{name}_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f(f"pk_{name}")),
    )


def _move(source: str, target: str) -> None:
    _create(target)
    op.execute(f"INSERT INTO {target} ({_COLUMNS}) SELECT {_COLUMNS} FROM {source}")
    op.drop_table(source)


def upgrade() -> None:
    _move("order_unpaid_expiry_failures", "order_expiry_failures")


def downgrade() -> None:
    _move("order_expiry_failures", "order_unpaid_expiry_failures")
