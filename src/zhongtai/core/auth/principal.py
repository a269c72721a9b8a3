"""The authenticated caller of a request, and the store-scope check every service can ask."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from zhongtai.core.auth.roles import Channel, Permission, Role
from zhongtai.core.errors import Forbidden, StoreOutOfScope

#: A till's terminal id: it is printed in its receipt numbers, whose parts "-" separates.
TERMINAL_ID = re.compile(r"[A-Za-z0-9_]{1,16}")
TERMINAL_ID_RULE = "1 to 16 letters, digits or _ (it is printed in the till's receipt numbers)"


@dataclass(frozen=True)
class Principal:
    """A staff user (by token) or a channel key. ``store_ids`` None means the whole chain."""

    kind: Literal["staff", "api_key"]
    id: uuid.UUID
    name: str
    permissions: frozenset[Permission]
    store_ids: frozenset[uuid.UUID] | None
    role: Role | None = None
    channel: Channel | None = None
    terminal_id: str | None = None
    session_id: uuid.UUID | None = field(default=None, compare=False)

    @property
    def scope_key(self) -> str:
        """Namespace for Idempotency-Keys: one caller's keys never collide with another's."""
        return f"{self.kind}:{self.id}"

    @property
    def chain_wide(self) -> bool:
        return self.store_ids is None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if permission not in self.permissions:
            who = self.role or self.channel
            raise Forbidden(
                f"{self.kind} with {who!s} lacks the permission {permission.value!r}.",
                permission=permission.value,
            )

    def covers_store(self, store_id: uuid.UUID) -> bool:
        return self.store_ids is None or store_id in self.store_ids

    def ensure_store(self, store_id: uuid.UUID) -> None:
        if not self.covers_store(store_id):
            raise StoreOutOfScope(
                f"Store {store_id} is outside this caller's stores.", store_id=str(store_id)
            )

    def stores_asked(self, asked: Iterable[uuid.UUID] | None) -> list[uuid.UUID] | None:
        """The stores a report covers: those ``asked`` (each must be ours), or else all of
        ours; None for the whole chain."""
        if asked:
            stores = list(asked)
            for store_id in stores:
                self.ensure_store(store_id)
            return stores
        return None if self.store_ids is None else sorted(self.store_ids)

    def ensure_shares_a_store(self, store_ids: Iterable[uuid.UUID]) -> None:
        """For things that belong to several stores (a staff user): one of them must be ours."""
        wanted = set(store_ids)
        if self.store_ids is not None and not self.store_ids & wanted:
            raise StoreOutOfScope("None of these stores is among this caller's stores.")
