"""secret rotation: the previous signing secret of subscriptions and connections, and its expiry

Revision ID: 0016_secret_rotation
Revises: 0015_marketplace_secrets_sealed
Create Date: 2026-11-26 11:20:00.000000

Webhook subscriptions and marketplace connections keep, after a rotation of their signing
secret, the secret it replaced (sealed like the current one) and the moment it stops signing.
Both columns start empty: no secret was rotated before. A downgrade drops them, ending any
overlap in progress at once (the new secret signs alone).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = '0016_secret_rotation'
down_revision: str | None = '0015_marketplace_secrets_sealed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('webhook_subscriptions', 'marketplace_connections')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('previous_secret_sealed', sa.LargeBinary(), nullable=True))
            batch_op.add_column(
                sa.Column(
                    'previous_secret_expires_at',
                    zhongtai.core.db.UTCDateTime(timezone=True),
                    nullable=True,
                )
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('previous_secret_expires_at')
            batch_op.drop_column('previous_secret_sealed')
