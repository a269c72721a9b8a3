"""idempotency subjects: a stored response knows whom it concerns, and can be forgotten

Revision ID: 0024_idempotency_subjects
Revises: 0023_import_batch_stores
Create Date: 2026-11-28 10:00:00.000000

A stored Idempotency-Key response holding a member's data (the answer of an identify call or a
profile change: her name, her masked phone) outlived her erasure by up to a day. A record now
names its subject (``member:<id>``), set when such a response is stored, so that her erasure
forgets it: ``forgotten_at`` is set and the response, status and fingerprint are blanked, while
the key stays bound (a retry answers 410 instead of running the request again). Records stored
before this revision have no subject; they expire within a day as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = "0024_idempotency_subjects"
down_revision: str | None = "0023_import_batch_stores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_SUBJECT = "subject IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("forgotten_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_idempotency_records_subject",
        "idempotency_records",
        ["subject"],
        unique=False,
        sqlite_where=sa.text(_HAS_SUBJECT),
        postgresql_where=sa.text(_HAS_SUBJECT),
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_records_subject", table_name="idempotency_records")
    # A forgotten record has no response to replay: dropping the marker would make it look
    # like a request still in flight, so it goes (its request's effect stays).
    op.execute("DELETE FROM idempotency_records WHERE forgotten_at IS NOT NULL")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_column("forgotten_at")
        batch_op.drop_column("subject")
