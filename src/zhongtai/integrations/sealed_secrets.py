"""Signing secrets sealed at rest: what webhook subscriptions and marketplace connections keep
in the database instead of the HMAC keys they sign with, and the opening of them to sign."""

from __future__ import annotations

import os
import uuid
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from zhongtai.core.settings import Settings

_SEALED_FORMAT = b"\x01"  # leading version byte, so the key or scheme can change later
_NONCE_BYTES = 12


class SecretUnreadable(ValueError):
    """A sealed signing secret does not open: ZHONGTAI_SECRET_KEY changed since it was sealed."""


class SecretSealer:
    """Seals one kind of signing secret for the database and opens it for the signer.

    AES-GCM under a key derived (HKDF-SHA256) from ZHONGTAI_SECRET_KEY, with ``purpose`` as
    the derivation's info: each kind of secret has a key of its own, so a secret of one kind
    never opens as another. The owner's id (subscription, connection) is the associated data,
    so a sealed secret copied onto another owner does not open either. ``remedy`` tells the
    reader of a secret that does not open what to do about it.
    """

    def __init__(self, key_material: bytes, *, purpose: bytes, remedy: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
            key_material
        )
        self._aead = AESGCM(key)
        self._remedy = remedy

    def seal(self, owner_id: uuid.UUID, secret: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), owner_id.bytes)
        return _SEALED_FORMAT + nonce + sealed

    def open(self, owner_id: uuid.UUID, sealed: bytes) -> str:
        """The secret in clear; :class:`SecretUnreadable` when it was sealed under another key
        (or for another owner)."""
        if not sealed.startswith(_SEALED_FORMAT):
            raise SecretUnreadable("unknown sealed secret format")
        nonce, box = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, box, owner_id.bytes).decode()
        except InvalidTag:
            raise SecretUnreadable(
                "the signing secret does not open with this ZHONGTAI_SECRET_KEY (was the key "
                f"changed?); {self._remedy}"
            ) from None


@lru_cache(maxsize=8)
def _sealer(key_material: bytes, purpose: bytes, remedy: str) -> SecretSealer:
    # Deriving the key costs an HKDF run: once per key and kind, not once per request.
    return SecretSealer(key_material, purpose=purpose, remedy=remedy)


def sealer_for(settings: Settings, *, purpose: bytes, remedy: str) -> SecretSealer:
    """The sealer of one kind of secret (``purpose``) under this deployment's
    ZHONGTAI_SECRET_KEY."""
    return _sealer(settings.secret_key.get_secret_value().encode(), purpose, remedy)
