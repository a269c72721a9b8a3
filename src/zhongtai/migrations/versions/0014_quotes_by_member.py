"""checkout quotes by member: an index for a member's merge, which moves her quotes

Revision ID: 0014_quotes_by_member
Revises: 0013_handled_events_pruning
Create Date: 2026-11-26 07:35:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0014_quotes_by_member'
down_revision: str | None = '0013_handled_events_pruning'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('checkout_quotes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkout_quotes_member_id'), ['member_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('checkout_quotes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkout_quotes_member_id'))
