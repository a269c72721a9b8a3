"""reference generation: one row that triggers change on every write to the reference tables

Revision ID: 0017_reference_generation
Revises: 0016_secret_rotation
Create Date: 2026-11-26 21:00:00.000000

Processes cache reference data (pilot rules, opening hours, category lineages, promotions)
tagged with this value and read again when it differs (``zhongtai.core.reference``). Every
statement that writes one of the tables sets it to a new random value: on PostgreSQL one
statement-level trigger per table, on SQLite one trigger per table and kind of write.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017_reference_generation'
down_revision: str | None = '0016_secret_rotation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As zhongtai.core.reference.REFERENCE_TABLES when this revision was written.
_TABLES = (
    'categories',
    'products',
    'skus',
    'pilot_rules',
    'opening_hours',
    'opening_exceptions',
    'promotions',
)
_PG_FUNCTION = """
CREATE FUNCTION zt_new_reference_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE reference_generation
       SET generation = floor(random() * 4e18)::bigint
     WHERE id = 1;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        'reference_generation',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('generation', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reference_generation')),
    )
    op.execute(
        sa.text('INSERT INTO reference_generation (id, generation) VALUES (1, :g)').bindparams(
            g=secrets.randbits(62)
        )
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        for table in _TABLES:
            op.execute(
                f'CREATE TRIGGER zt_reference_{table} '
                f'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} '
                'FOR EACH STATEMENT EXECUTE FUNCTION zt_new_reference_generation()'
            )
        return
    for table in _TABLES:
        for event in ('INSERT', 'UPDATE', 'DELETE'):
            op.execute(
                f'CREATE TRIGGER zt_reference_{table}_{event.lower()} AFTER {event} ON {table} '
                'BEGIN UPDATE reference_generation SET generation = random() WHERE id = 1; END'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in _TABLES:
            op.execute(f'DROP TRIGGER IF EXISTS zt_reference_{table} ON {table}')
        op.execute('DROP FUNCTION IF EXISTS zt_new_reference_generation()')
    else:
        for table in _TABLES:
            for event in ('insert', 'update', 'delete'):
                op.execute(f'DROP TRIGGER IF EXISTS zt_reference_{table}_{event}')
    op.drop_table('reference_generation')
