"""Protection of personal data at rest: AES-GCM encryption of phones and keyed lookup hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from zhongtai.core.settings import Settings

NONCE_BYTES = 12
_FORMAT = b"\x01"  # leading version byte, so the key or scheme can change later


class PiiKeyInvalid(ValueError):
    """ZHONGTAI_PII_KEY is not base64 of exactly 32 bytes."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class PiiCipher:
    """Encrypts phone numbers and computes their lookup hashes from one master key.

    Two keys are derived from the master (HKDF-SHA256): one encrypts, one keys the hash, so a
    leaked lookup table reveals nothing without the master key. The hash lets the database
    find a member by phone with a unique index while never holding the number in clear.
    """

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise PiiKeyInvalid("the PII master key must be 32 bytes")
        self._aead = AESGCM(_derive(master, b"zhongtai/pii/encrypt/v1"))
        self._hash_key = _derive(master, b"zhongtai/pii/lookup/v1")

    def encrypt(self, plaintext: str, *, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return _FORMAT + nonce + sealed

    def decrypt(self, blob: bytes, *, purpose: str) -> str:
        if not blob.startswith(_FORMAT):
            raise ValueError("unknown PII ciphertext format")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, purpose.encode()).decode()
        except InvalidTag:
            raise ValueError("PII ciphertext does not open with this key") from None

    def lookup_key(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._hash_key, f"{purpose}:{value}".encode(), hashlib.sha256)
        return digest.hexdigest()


def master_key(settings: Settings) -> bytes:
    """ZHONGTAI_PII_KEY when set; otherwise derived from the secret key (development only)."""
    if settings.pii_key is not None:
        try:
            raw = base64.b64decode(settings.pii_key.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise PiiKeyInvalid("ZHONGTAI_PII_KEY must be base64 of 32 random bytes") from None
        if len(raw) != 32:
            raise PiiKeyInvalid("ZHONGTAI_PII_KEY must be base64 of exactly 32 bytes")
        return raw
    return _derive(settings.secret_key.get_secret_value().encode(), b"zhongtai/pii/dev-master")


@lru_cache(maxsize=8)
def _cipher_for(master: bytes) -> PiiCipher:
    return PiiCipher(master)


def cipher_for(settings: Settings) -> PiiCipher:
    return _cipher_for(master_key(settings))
