"""capability pauses: a store stops taking orders of one capability for a while

Revision ID: 0030_capability_pauses
Revises: 0029_order_expiry_failures
Create Date: 2026-11-28 12:20:00.000000

A store short of hands, or with its slicer down, pauses delivery (or pickup, or parcels) until a
moment it names, with a reason: sourcing passes it by for that type meanwhile, saying why.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = "0030_capability_pauses"
down_revision: str | None = "0029_order_expiry_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("location_capabilities") as batch:
        batch.add_column(
            sa.Column("paused_until", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("pause_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("location_capabilities") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("paused_until")
