"""Roles, channels and the permissions each grants: the one table to read for who may do what."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    HQ_ADMIN = "hq_admin"
    STORE_MANAGER = "store_manager"
    STORE_STAFF = "store_staff"
    GUIDE = "guide"
    ANALYST = "analyst"


class Channel(StrEnum):
    """Touchpoints that call the API with a key."""

    POS = "pos"
    APP = "app"
    MINI_PROGRAM = "mini_program"
    MARKETPLACE = "marketplace"
    ERP = "erp"


class Permission(StrEnum):
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    PRICES_WRITE = "prices:write"
    STORES_READ = "stores:read"
    STORES_WRITE = "stores:write"
    STORE_HOURS_WRITE = "stores:hours"
    PILOT_WRITE = "pilot:write"
    STAFF_READ = "staff:read"
    STAFF_WRITE = "staff:write"
    API_KEYS_WRITE = "api_keys:write"


#: Roles whose reach is the whole chain; every other role is limited to its assigned stores.
CHAIN_WIDE_ROLES = frozenset({Role.HQ_ADMIN, Role.ANALYST})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.HQ_ADMIN: frozenset(Permission),
    Role.ANALYST: frozenset(
        {Permission.CATALOG_READ, Permission.STORES_READ, Permission.STAFF_READ}
    ),
    Role.STORE_MANAGER: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.STORES_READ,
            Permission.STORE_HOURS_WRITE,
            Permission.STAFF_READ,
        }
    ),
    Role.STORE_STAFF: frozenset({Permission.CATALOG_READ, Permission.STORES_READ}),
    Role.GUIDE: frozenset({Permission.CATALOG_READ, Permission.STORES_READ}),
}

#: Scopes a key of each channel gets when none are asked for, and the most it may ever hold.
CHANNEL_DEFAULT_SCOPES: dict[Channel, frozenset[Permission]] = {
    Channel.POS: frozenset({Permission.CATALOG_READ, Permission.STORES_READ}),
    Channel.APP: frozenset({Permission.CATALOG_READ, Permission.STORES_READ}),
    Channel.MINI_PROGRAM: frozenset({Permission.CATALOG_READ, Permission.STORES_READ}),
    Channel.MARKETPLACE: frozenset({Permission.CATALOG_READ}),
    Channel.ERP: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.CATALOG_WRITE,
            Permission.PRICES_WRITE,
            Permission.STORES_READ,
        }
    ),
}
CHANNEL_ALLOWED_SCOPES: dict[Channel, frozenset[Permission]] = {
    Channel.POS: CHANNEL_DEFAULT_SCOPES[Channel.POS],
    Channel.APP: CHANNEL_DEFAULT_SCOPES[Channel.APP],
    Channel.MINI_PROGRAM: CHANNEL_DEFAULT_SCOPES[Channel.MINI_PROGRAM],
    Channel.MARKETPLACE: frozenset({Permission.CATALOG_READ, Permission.STORES_READ}),
    Channel.ERP: CHANNEL_DEFAULT_SCOPES[Channel.ERP],
}
