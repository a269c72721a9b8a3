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
    #: Read members (identities masked), find or create them, change profile and consent.
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    #: See members' personal data whole (phones unmasked) and export it.
    MEMBERS_PII = "members:pii"
    #: Merge and erase members.
    MEMBERS_ADMIN = "members:admin"
    POINTS_READ = "points:read"
    #: Earn, redeem and reverse points for sales, orders and returns.
    POINTS_WRITE = "points:write"
    #: Correct points by hand, with a reason.
    POINTS_ADJUST = "points:adjust"
    WEBHOOKS_MANAGE = "webhooks:manage"
    EVENTS_READ = "events:read"
    AUDIT_READ = "audit:read"
    INVENTORY_READ = "inventory:read"
    INVENTORY_RECEIVE = "inventory:receive"
    INVENTORY_SELL = "inventory:sell"
    INVENTORY_RESERVE = "inventory:reserve"
    INVENTORY_ADJUST = "inventory:adjust"
    #: See orders: a store's staff their stores' orders, a channel key its channel's.
    ORDERS_READ = "orders:read"
    #: Quote a basket, place the order, pay it, cancel it before handover.
    ORDERS_PLACE = "orders:place"
    #: The store's work on orders: accept, pick, pack, hand over, book riders, ship.
    ORDERS_FULFIL = "orders:fulfil"
    #: How well stores keep their promises: the on-time rate per store and fulfilment type.
    FULFILLMENT_REPORT = "fulfillment:report"
    #: Take goods back and refund them (any store).
    ORDERS_RETURN = "orders:return"
    #: Record till sales, also uploaded later by an offline terminal.
    POS_SELL = "pos:sell"
    #: Draw the daily settlement (money per store, channel and tender) for finance.
    FINANCE_READ = "finance:read"
    #: Set up promotions and coupon campaigns (HQ marketing).
    OFFERS_MANAGE = "offers:manage"
    #: A guide's own work: her customers, tasks, share links, performance and statement.
    GUIDE_WORK = "guides:work"
    #: Run a store's guides: enrol, reassign customers, hand over when one leaves, targets,
    #: commission corrections, statements and the payroll export.
    GUIDES_MANAGE = "guides:manage"
    #: The chain's guide programme: binding rule, attribution switches, commission rules,
    #: closing a month.
    GUIDES_PROGRAM = "guides:program"
    #: Record that a member opened a guide's share link (the app and mini-program).
    SHARE_LINKS_OPEN = "share_links:open"


#: What every store role and touchpoint needs to serve a member in front of them.
_SERVE_MEMBERS = frozenset(
    {Permission.MEMBERS_READ, Permission.MEMBERS_WRITE, Permission.POINTS_READ}
)
#: What a selling touchpoint needs on top: points earned and spent at the till or checkout.
_SELL_TO_MEMBERS = _SERVE_MEMBERS | {Permission.POINTS_WRITE}

#: Roles whose reach is the whole chain; every other role is limited to its assigned stores.
CHAIN_WIDE_ROLES = frozenset({Role.HQ_ADMIN, Role.ANALYST})

#: A store's work on orders: see them, fulfil them, take returns, sell at the till.
STORE_ORDERS = frozenset(
    {
        Permission.ORDERS_READ,
        Permission.ORDERS_FULFIL,
        Permission.ORDERS_RETURN,
        Permission.POS_SELL,
    }
)
#: What a customer-facing touchpoint does with orders.
PLACE_ORDERS = frozenset({Permission.ORDERS_READ, Permission.ORDERS_PLACE})

#: Stock on the shop floor: read it, receive deliveries, sell at the till, hold it for orders.
#: Correcting it (adjustments, write-offs, safety stock) is inventory:adjust, for managers.
INVENTORY_FLOOR = frozenset(
    {
        Permission.INVENTORY_READ,
        Permission.INVENTORY_RECEIVE,
        Permission.INVENTORY_SELL,
        Permission.INVENTORY_RESERVE,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.HQ_ADMIN: frozenset(Permission),
    Role.ANALYST: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.STORES_READ,
            Permission.STAFF_READ,
            Permission.EVENTS_READ,
            Permission.INVENTORY_READ,
            Permission.MEMBERS_READ,
            Permission.POINTS_READ,
            Permission.ORDERS_READ,
            Permission.FINANCE_READ,
            Permission.FULFILLMENT_REPORT,
        }
    ),
    Role.STORE_MANAGER: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.STORES_READ,
            Permission.STORE_HOURS_WRITE,
            Permission.STAFF_READ,
            Permission.EVENTS_READ,
            Permission.INVENTORY_ADJUST,
            Permission.FINANCE_READ,
            Permission.AUDIT_READ,  # her stores' entries only
            Permission.FULFILLMENT_REPORT,
            Permission.GUIDES_MANAGE,
        }
    )
    | INVENTORY_FLOOR
    | STORE_ORDERS
    | _SERVE_MEMBERS,
    Role.STORE_STAFF: frozenset(
        {Permission.CATALOG_READ, Permission.STORES_READ, Permission.EVENTS_READ}
    )
    | INVENTORY_FLOOR
    | STORE_ORDERS
    | _SERVE_MEMBERS,
    Role.GUIDE: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.STORES_READ,
            Permission.INVENTORY_READ,
            Permission.GUIDE_WORK,
        }
    )
    | _SERVE_MEMBERS,
}

#: Scopes a key of each channel gets when none are asked for, and the most it may ever hold.
CHANNEL_DEFAULT_SCOPES: dict[Channel, frozenset[Permission]] = {
    Channel.POS: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.STORES_READ,
            Permission.EVENTS_READ,
            Permission.INVENTORY_READ,
            Permission.INVENTORY_SELL,
            Permission.INVENTORY_RESERVE,
            Permission.ORDERS_READ,
            Permission.ORDERS_RETURN,
            Permission.POS_SELL,
        }
    )
    | _SELL_TO_MEMBERS,
    Channel.APP: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.STORES_READ,
            Permission.INVENTORY_READ,
            Permission.INVENTORY_RESERVE,
            Permission.SHARE_LINKS_OPEN,
        }
    )
    | PLACE_ORDERS
    | _SELL_TO_MEMBERS,
    Channel.MINI_PROGRAM: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.STORES_READ,
            Permission.INVENTORY_READ,
            Permission.INVENTORY_RESERVE,
            Permission.SHARE_LINKS_OPEN,
        }
    )
    | PLACE_ORDERS
    | _SELL_TO_MEMBERS,
    Channel.MARKETPLACE: frozenset({Permission.CATALOG_READ}) | PLACE_ORDERS,
    Channel.ERP: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.CATALOG_WRITE,
            Permission.PRICES_WRITE,
            Permission.STORES_READ,
            Permission.INVENTORY_READ,
            Permission.INVENTORY_RECEIVE,
        }
    ),
}
CHANNEL_ALLOWED_SCOPES: dict[Channel, frozenset[Permission]] = {
    Channel.POS: CHANNEL_DEFAULT_SCOPES[Channel.POS],
    Channel.APP: CHANNEL_DEFAULT_SCOPES[Channel.APP],
    Channel.MINI_PROGRAM: CHANNEL_DEFAULT_SCOPES[Channel.MINI_PROGRAM],
    Channel.MARKETPLACE: frozenset(
        {Permission.CATALOG_READ, Permission.STORES_READ, Permission.INVENTORY_READ}
    )
    | PLACE_ORDERS
    # Marketplace orders may carry a buyer id that finds (or makes) the member.
    | {Permission.MEMBERS_READ, Permission.MEMBERS_WRITE},
    Channel.ERP: CHANNEL_DEFAULT_SCOPES[Channel.ERP]
    | {Permission.EVENTS_READ, Permission.FINANCE_READ, Permission.INVENTORY_ADJUST},
}
