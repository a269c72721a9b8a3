"""marketplace secrets sealed: connections' signing secrets sealed at rest, as webhooks' are

Revision ID: 0015_marketplace_secrets_sealed
Revises: 0014_quotes_by_member
Create Date: 2026-11-26 09:10:00.000000

Existing connections' secrets are sealed with a key derived from the ZHONGTAI_SECRET_KEY of the
environment the migration runs in: run it with the key the app runs with. The sealing scheme is
written out here (not imported) so that this migration keeps doing what it did when the app's
code moves on; ``zhongtai.integrations.marketplace.marketplace_secrets`` opens what it seals.
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

revision: str = '0015_marketplace_secrets_sealed'
down_revision: str | None = '0014_quotes_by_member'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEALED_FORMAT = b"\x01"
_NONCE_BYTES = 12

_connections = sa.table(
    'marketplace_connections',
    sa.column('id', sa.Uuid()),
    sa.column('secret', sa.String(200)),
    sa.column('secret_sealed', sa.LargeBinary()),
)


def _aead() -> AESGCM:
    material = get_settings().secret_key.get_secret_value().encode()
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"zhongtai/marketplace/secret/v1"
    ).derive(material)
    return AESGCM(key)


def _seal(aead: AESGCM, connection_id: uuid.UUID, secret: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _SEALED_FORMAT + nonce + aead.encrypt(nonce, secret.encode(), connection_id.bytes)


def _open(aead: AESGCM, connection_id: uuid.UUID, sealed: bytes) -> str:
    nonce, box = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return aead.decrypt(nonce, box, connection_id.bytes).decode()
    except InvalidTag:
        raise RuntimeError(
            f"the secret of marketplace connection {connection_id} does not open with this "
            "ZHONGTAI_SECRET_KEY: downgrade with the key it was sealed under"
        ) from None


def upgrade() -> None:
    # Added nullable, filled by sealing each clear secret, then made required.
    with op.batch_alter_table('marketplace_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_sealed', sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_connections.c.id, _connections.c.secret)).all()
    if rows:
        aead = _aead()
        for connection_id, secret in rows:
            bind.execute(
                _connections.update()
                .where(_connections.c.id == connection_id)
                .values(secret_sealed=_seal(aead, connection_id, secret))
            )
    with op.batch_alter_table('marketplace_connections', schema=None) as batch_op:
        batch_op.alter_column('secret_sealed', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('secret')


def downgrade() -> None:
    with op.batch_alter_table('marketplace_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret', sa.VARCHAR(length=200), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_connections.c.id, _connections.c.secret_sealed)).all()
    if rows:
        aead = _aead()
        for connection_id, sealed in rows:
            bind.execute(
                _connections.update()
                .where(_connections.c.id == connection_id)
                .values(secret=_open(aead, connection_id, sealed))
            )
    with op.batch_alter_table('marketplace_connections', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.VARCHAR(length=200), nullable=False)
        batch_op.drop_column('secret_sealed')
