"""handled events pruned with their events: an index on handled_events.event_id

Revision ID: 0013_handled_events_pruning
Revises: 0012_webhook_hardening
Create Date: 2026-11-26 07:20:00.000000

The relay's pruning deletes the handlers' receipts of the events it prunes, by event id; the
primary key (consumer, event_id) cannot serve that lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0013_handled_events_pruning'
down_revision: str | None = '0012_webhook_hardening'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('handled_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handled_events_event_id'), ['event_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('handled_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handled_events_event_id'))
