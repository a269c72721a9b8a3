"""outbox lean indexes: drop the indexes on outbox_events.type and outbox_events.store_id

Revision ID: 0019_outbox_lean_indexes
Revises: 0018_orders_store_backlog
Create Date: 2026-11-27 07:00:00.000000

No statement reads the outbox by type or store alone: the relay reads unpublished events by
seq, the webhook queue by seq, the live stream by publication number (its type and store
filters apply to the events after the subscriber's cursor). Every event is written twice (its
insert, and the update that numbers it when published, which touches indexed columns and so
writes a new entry into every index), so each of these unused indexes cost two index entries
per event: several per order.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0019_outbox_lean_indexes'
down_revision: str | None = '0018_orders_store_backlog'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_outbox_events_type', table_name='outbox_events')
    op.drop_index('ix_outbox_events_store_id', table_name='outbox_events')


def downgrade() -> None:
    op.create_index('ix_outbox_events_store_id', 'outbox_events', ['store_id'], unique=False)
    op.create_index('ix_outbox_events_type', 'outbox_events', ['type'], unique=False)
