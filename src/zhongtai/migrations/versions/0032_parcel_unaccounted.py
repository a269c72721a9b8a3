"""parcel unaccounted: when the platform forgot a rider's job while she had the parcel

Revision ID: 0032_parcel_unaccounted
Revises: 0031_late_order_tasks
Create Date: 2026-11-28 13:00:00.000000

The courier watch used to log a job the platform no longer knew once its rider had the parcel,
again at every quiet spell. It now tells the store once (``fulfillment.parcel_unaccounted``)
and records when on the dispatch.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = "0032_parcel_unaccounted"
down_revision: str | None = "0031_late_order_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("courier_dispatches") as batch:
        batch.add_column(
            sa.Column(
                "parcel_unaccounted_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("courier_dispatches") as batch:
        batch.drop_column("parcel_unaccounted_at")
