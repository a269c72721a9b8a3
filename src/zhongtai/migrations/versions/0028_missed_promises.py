"""missed promises: orders not delivered by the moment their checkout promised

Revision ID: 0028_missed_promises
Revises: 0027_courier_watch
Create Date: 2026-11-28 10:30:00.000000

The SLA clock timed the store's picking against the moment the goods must be ready; nothing
timed the customer's own promise, her doorstep by ``promised_by``. `serve`'s promise clock now
records each delivery or parcel still under way past it, once per order (``missed_promises``,
keyed by the order), with a ``fulfillment.promise_missed`` event for the store. It finds them
by ``ix_orders_delivery_promise`` (status, promised_by), as the unpaid-order sweeper finds its
orders by (status, payment_due_at).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = "0028_missed_promises"
down_revision: str | None = "0027_courier_watch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "missed_promises"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("fulfillment_type", sa.String(length=16), nullable=False),
        sa.Column("promised_by", zhongtai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("order_status", sa.String(length=24), nullable=False),
        sa.Column("detected_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_missed_promises_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["locations.id"], name=op.f("fk_missed_promises_store_id_locations")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_missed_promises")),
    )
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.create_index(
            "ix_missed_promises_store", ["store_id", "detected_at"], unique=False
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_delivery_promise", ["status", "promised_by"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_delivery_promise")
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_index("ix_missed_promises_store")
    op.drop_table(_TABLE)
