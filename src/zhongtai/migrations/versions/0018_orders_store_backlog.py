"""orders store backlog: a partial index of each store's open orders (paid, accepted, picking)

Revision ID: 0018_orders_store_backlog
Revises: 0017_reference_generation
Create Date: 2026-11-27 01:00:00.000000

Every quote counts the picking backlog of its candidate stores. The index on (store_id,
status) holds every order a store ever had, and a plan that walks it by store reads them all;
this one holds only the open orders, so the count stays cheap however long the history grows.
Orders being placed (``created``) are not in it: placing writes no entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018_orders_store_backlog'
down_revision: str | None = '0017_reference_generation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As zhongtai.orders.kinds.PICKING_BACKLOG_SQL when this revision was written.
_BACKLOG = "status IN ('paid', 'accepted', 'picking')"


def upgrade() -> None:
    op.create_index(
        'ix_orders_store_backlog',
        'orders',
        ['store_id'],
        unique=False,
        sqlite_where=sa.text(_BACKLOG),
        postgresql_where=sa.text(_BACKLOG),
    )


def downgrade() -> None:
    op.drop_index('ix_orders_store_backlog', table_name='orders')
