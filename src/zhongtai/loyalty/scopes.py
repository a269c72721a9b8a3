"""Where an offer holds, as stored (a JSON document) and as the pure rules take it (Scope)."""

from __future__ import annotations

import uuid
from typing import Any

from zhongtai.loyalty.promotion_rules import Scope


def scope_from_json(doc: dict[str, Any] | None) -> Scope:
    doc = doc or {}
    return Scope(
        channels=frozenset(doc.get("channels", ())),
        store_ids=frozenset(uuid.UUID(x) for x in doc.get("store_ids", ())),
        sku_ids=frozenset(uuid.UUID(x) for x in doc.get("sku_ids", ())),
        category_ids=frozenset(uuid.UUID(x) for x in doc.get("category_ids", ())),
        tiers=frozenset(doc.get("tiers", ())),
        members_only=bool(doc.get("members_only", False)),
        new_members_only=bool(doc.get("new_members_only", False)),
    )


def scope_to_json(scope: Scope) -> dict[str, Any]:
    """Sorted lists, so that the same scope is always stored the same way."""
    return {
        "channels": sorted(scope.channels),
        "store_ids": sorted(str(x) for x in scope.store_ids),
        "sku_ids": sorted(str(x) for x in scope.sku_ids),
        "category_ids": sorted(str(x) for x in scope.category_ids),
        "tiers": sorted(scope.tiers),
        "members_only": scope.members_only,
        "new_members_only": scope.new_members_only,
    }
