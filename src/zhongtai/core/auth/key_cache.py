"""A short-lived, per-process memory of verified API keys, so the POS hot path skips a query.

An entry lives ``ttl`` seconds (``ZHONGTAI_API_KEY_CACHE_SECONDS``, 0 turns it off). Revoking a
key evicts it at once in the process that handled the revocation; other API processes stop
accepting it within ``ttl``. Entries hold the secret's hash, never the secret.
"""

from __future__ import annotations

import hmac

from cachetools import TTLCache

from zhongtai.core.auth import credentials
from zhongtai.core.auth.principal import Principal


class VerifiedKeyCache:
    def __init__(self, ttl_seconds: float, maxsize: int = 10_000) -> None:
        self._entries: TTLCache[str, tuple[str, Principal]] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )

    def get(self, material: credentials.ApiKeyMaterial) -> Principal | None:
        if self._entries is None:
            return None
        entry = self._entries.get(material.prefix)
        if entry is None:
            return None
        secret_hash, principal = entry
        if not hmac.compare_digest(secret_hash, material.secret_hash):
            return None
        return principal

    def put(self, material: credentials.ApiKeyMaterial, principal: Principal) -> None:
        if self._entries is not None:
            self._entries[material.prefix] = (material.secret_hash, principal)

    def evict(self, prefix: str) -> None:
        if self._entries is not None:
            self._entries.pop(prefix, None)
