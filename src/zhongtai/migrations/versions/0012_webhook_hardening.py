"""webhook hardening: signing secrets sealed at rest, the audit log append-only in the database,
an index for pruning old deliveries

Revision ID: 0012_webhook_hardening
Revises: 0011_points_earn_rules
Create Date: 2026-11-26 04:33:31.634694

Existing subscriptions' secrets are sealed with a key derived from the ZHONGTAI_SECRET_KEY of the
environment the migration runs in: run it with the key the app runs with. The sealing scheme is
written out here (not imported) so that this migration keeps doing what it did when the app's
code moves on; ``zhongtai.integrations.webhooks.WebhookSecrets`` opens what it seals.

The audit log's triggers refuse UPDATE, DELETE (and, on PostgreSQL, TRUNCATE) of its rows from
any client. A role that owns the table can still drop a trigger: run the app as a role that
does not own its tables to make that impossible too. On SQLite, a later migration that copies
``audit_log`` (batch mode) must create the triggers again; a test checks they exist at head.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from zhongtai.core.settings import get_settings

revision: str = '0012_webhook_hardening'
down_revision: str | None = '0011_points_earn_rules'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEALED_FORMAT = b"\x01"
_NONCE_BYTES = 12

_subscriptions = sa.table(
    'webhook_subscriptions',
    sa.column('id', sa.Uuid()),
    sa.column('secret', sa.String(200)),
    sa.column('secret_sealed', sa.LargeBinary()),
)

_PG_UP = [
    """
    CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING HINT = 'Audit entries are never changed or deleted; record a new entry.';
    END;
    $$
    """,
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only()",
    # TRUNCATE fires no row trigger: it needs a statement trigger of its own.
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only()",
]
_PG_DOWN = [
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP FUNCTION IF EXISTS audit_log_is_append_only()",
]
_SQLITE_UP = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_log_no_delete",
    "DROP TRIGGER IF EXISTS audit_log_no_update",
]


def _aead() -> AESGCM:
    material = get_settings().secret_key.get_secret_value().encode()
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"zhongtai/webhooks/secret/v1"
    ).derive(material)
    return AESGCM(key)


def _seal(aead: AESGCM, subscription_id: uuid.UUID, secret: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _SEALED_FORMAT + nonce + aead.encrypt(nonce, secret.encode(), subscription_id.bytes)


def _open(aead: AESGCM, subscription_id: uuid.UUID, sealed: bytes) -> str:
    nonce, box = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return aead.decrypt(nonce, box, subscription_id.bytes).decode()
    except InvalidTag:
        raise RuntimeError(
            f"the secret of webhook subscription {subscription_id} does not open with this "
            "ZHONGTAI_SECRET_KEY: downgrade with the key it was sealed under"
        ) from None


def _statements(up: bool) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        return _PG_UP if up else _PG_DOWN
    if dialect == 'sqlite':
        return _SQLITE_UP if up else _SQLITE_DOWN
    return []


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_event', ['event_id'], unique=False)

    # Added nullable, filled by sealing each clear secret, then made required.
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_sealed', sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_subscriptions.c.id, _subscriptions.c.secret)).all()
    if rows:
        aead = _aead()
        for subscription_id, secret in rows:
            bind.execute(
                _subscriptions.update()
                .where(_subscriptions.c.id == subscription_id)
                .values(secret_sealed=_seal(aead, subscription_id, secret))
            )
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.alter_column('secret_sealed', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('secret')

    for statement in _statements(up=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(up=False):
        op.execute(statement)

    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret', sa.VARCHAR(length=200), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_subscriptions.c.id, _subscriptions.c.secret_sealed)).all()
    if rows:
        aead = _aead()
        for subscription_id, sealed in rows:
            bind.execute(
                _subscriptions.update()
                .where(_subscriptions.c.id == subscription_id)
                .values(secret=_open(aead, subscription_id, sealed))
            )
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.VARCHAR(length=200), nullable=False)
        batch_op.drop_column('secret_sealed')

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_event')
