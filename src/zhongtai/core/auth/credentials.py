"""Secrets handling: argon2 password hashes, signed access tokens, API key material."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = _hasher.hash("zhongtai-timing-equaliser")
TOKEN_ALGORITHM = "HS256"  # noqa: S105
TOKEN_AUDIENCE = "zhongtai-api"  # noqa: S105
API_KEY_PREFIX = "ztk_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: datetime


def issue_access_token(
    secret: str,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    issued_at: datetime,
    expires_at: datetime,
) -> str:
    payload = {
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "aud": TOKEN_AUDIENCE,
    }
    return jwt.encode(payload, secret, algorithm=TOKEN_ALGORITHM)


def read_access_token(secret: str, token: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token signed by us; None for anything else."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            options={"require": ["sub", "sid", "exp"]},
        )
        return TokenClaims(
            user_id=uuid.UUID(payload["sub"]),
            session_id=uuid.UUID(payload["sid"]),
            expires_at=datetime.fromtimestamp(payload["exp"]).astimezone(),
        )
    except (jwt.PyJWTError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class ApiKeyMaterial:
    prefix: str
    secret: str

    @property
    def full_key(self) -> str:
        return f"{API_KEY_PREFIX}{self.prefix}_{self.secret}"

    @property
    def secret_hash(self) -> str:
        return hash_api_key_secret(self.secret)


def new_api_key_material() -> ApiKeyMaterial:
    return ApiKeyMaterial(prefix=secrets.token_hex(6), secret=secrets.token_urlsafe(32))


def split_api_key(value: str) -> ApiKeyMaterial | None:
    if not value.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, secret = value[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not prefix or not secret or len(prefix) > 16:
        return None
    return ApiKeyMaterial(prefix=prefix, secret=secret)


def hash_api_key_secret(secret: str) -> str:
    # API key secrets are 256-bit random strings, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_matches(stored_hash: str | None, secret: str) -> bool:
    candidate = hash_api_key_secret(secret)
    return hmac.compare_digest(stored_hash or "0" * 64, candidate) and stored_hash is not None
