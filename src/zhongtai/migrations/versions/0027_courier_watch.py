"""courier watch: where a dispatch's callbacks go, and when its quiet job was last checked

Revision ID: 0027_courier_watch
Revises: 0026_return_gift_adjustments
Create Date: 2026-11-28 07:10:00.000000

A job the platform drops without a word (a call-off it took in a transaction of ours that was
lost, a job it cancelled for want of riders) leaves a packed order waiting for a rider who never
comes. `serve` now asks the platform after jobs that have gone quiet, and books a rider again in
place of a job it no longer has: the new rider calls back where the first was told to
(``callback_url``, kept from now on), and ``checked_at`` records the last time a quiet job was
found still on, so the platform is asked once per quiet spell, not at every pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = "0027_courier_watch"
down_revision: str | None = "0026_return_gift_adjustments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("courier_dispatches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_url", sa.String(length=1024), nullable=True))
        batch_op.add_column(
            sa.Column("checked_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_courier_dispatches_status_updated_at", ["status", "updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("courier_dispatches", schema=None) as batch_op:
        batch_op.drop_index("ix_courier_dispatches_status_updated_at")
        batch_op.drop_column("checked_at")
        batch_op.drop_column("callback_url")
