"""Who may do what: every caller (role or channel key) against every endpoint family.

Allowed calls succeed (2xx); others answer 403 — ``store-out-of-scope`` when only the store is
wrong — and an anonymous caller always gets 401. One row per endpoint family, read it as a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from stdnum import ean

from tests.factories import TEST_SECRET, Factory
from tests.integrations import events as _test_events  # noqa: F401  (declares test.price_tagged)
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.clock import utcnow
from zhongtai.core.settings import Settings
from zhongtai.inventory import service as inventory
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.models import SourceType
from zhongtai.members import service as members
from zhongtai.members.models import IdentityKind
from zhongtai.stores import service as stores
from zhongtai.stores.models import Capability, Location

CALLERS = [
    "hq_admin",
    "analyst",
    "store_manager",
    "store_staff",
    "guide",
    "pos",
    "app",
    "mini_program",
    "marketplace",
    "erp",
]
STORE_BOUND = {"store_manager", "store_staff", "guide", "pos"}
EVERYONE = set(CALLERS)
STOCK_READERS = frozenset(EVERYONE - {"marketplace"})
STOCK_READERS_ANYWHERE = frozenset({"hq_admin", "analyst", "app", "mini_program", "erp"})


@dataclass
class World:
    own: Location
    other: Location
    category_id: str
    sku_id: str
    barcode: str
    member_id: str = ""
    duplicate_id: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable[[World], str]
    allowed: frozenset[str]
    body: Callable[[World], dict[str, Any]] | None = None
    out_of_scope: frozenset[str] = frozenset()


def _product(w: World) -> dict[str, Any]:
    return {
        "code": "MATRIX-P",
        "name": "矩阵测试商品",
        "category_id": w.category_id,
        "skus": [
            {
                "code": "MATRIX-S",
                "name": "矩阵测试 500ml",
                "base_price": 350,
                "barcodes": ["6901234567892"],
            }
        ],
    }


def _hours(_: World) -> dict[str, Any]:
    return {"spans": [{"weekday": d, "opens_at": "08:00", "closes_at": "22:00"} for d in range(7)]}


def _store(_: World) -> dict[str, Any]:
    return {
        "code": "MATRIX01",
        "name": "矩阵店",
        "region": "静安区",
        "city": "上海",
        "address": "南京西路 1 号",
        "latitude": 31.229,
        "longitude": 121.455,
        "timezone": "Asia/Shanghai",
    }


def _stock_lines(w: World, reference: str) -> dict[str, Any]:
    return {"reference": reference, "lines": [{"sku_id": w.sku_id, "quantity": 1}]}


INVENTORY_CASES = [
    Case(
        "inventory_balances_own",
        "GET",
        lambda w: f"/api/v1/inventory/locations/{w.own.id}/balances",
        STOCK_READERS,
    ),
    Case(
        "inventory_balances_other",
        "GET",
        lambda w: f"/api/v1/inventory/locations/{w.other.id}/balances",
        STOCK_READERS_ANYWHERE,
        out_of_scope=frozenset(STORE_BOUND),
    ),
    Case(
        "inventory_sku_balances",
        "GET",
        lambda w: f"/api/v1/inventory/skus/{w.sku_id}/balances",
        STOCK_READERS,
    ),
    Case("inventory_movements", "GET", lambda w: "/api/v1/inventory/movements", STOCK_READERS),
    Case(
        "inventory_discrepancies",
        "GET",
        lambda w: "/api/v1/inventory/discrepancies",
        STOCK_READERS,
    ),
    Case(
        "inventory_receipt_own",
        "POST",
        lambda w: "/api/v1/inventory/receipts",
        frozenset({"hq_admin", "store_manager", "store_staff", "erp"}),
        lambda w: {"location_id": str(w.own.id)} | _stock_lines(w, "DN-1"),
    ),
    Case(
        "inventory_receipt_other",
        "POST",
        lambda w: "/api/v1/inventory/receipts",
        frozenset({"hq_admin", "erp"}),
        lambda w: {"location_id": str(w.other.id)} | _stock_lines(w, "DN-2"),
        out_of_scope=frozenset({"store_manager", "store_staff"}),
    ),
    Case(
        "inventory_adjust_own",
        "POST",
        lambda w: "/api/v1/inventory/adjustments",
        frozenset({"hq_admin", "store_manager"}),
        lambda w: {
            "location_id": str(w.own.id),
            "sku_id": w.sku_id,
            "quantity": -1,
            "reason": "broken",
        },
    ),
    Case(
        "inventory_levels_other",
        "PUT",
        lambda w: f"/api/v1/inventory/locations/{w.other.id}/skus/{w.sku_id}/levels",
        frozenset({"hq_admin"}),
        lambda w: {"safety_stock": 1},
        out_of_scope=frozenset({"store_manager"}),
    ),
    Case(
        "inventory_pos_sale_own",
        "POST",
        lambda w: "/api/v1/inventory/pos-sales",
        frozenset({"hq_admin", "store_manager", "store_staff", "pos"}),
        lambda w: {"location_id": str(w.own.id)} | _stock_lines(w, "R-1"),
    ),
    Case(
        "inventory_pos_sale_other",
        "POST",
        lambda w: "/api/v1/inventory/pos-sales",
        frozenset({"hq_admin"}),
        lambda w: {"location_id": str(w.other.id)} | _stock_lines(w, "R-2"),
        out_of_scope=frozenset({"store_manager", "store_staff", "pos"}),
    ),
    Case(
        "inventory_reserve_own",
        "POST",
        lambda w: "/api/v1/inventory/reservations",
        frozenset({"hq_admin", "store_manager", "store_staff", "pos", "app", "mini_program"}),
        lambda w: {"location_id": str(w.own.id)} | _stock_lines(w, "checkout-1"),
    ),
    Case(
        "inventory_reserve_other",
        "POST",
        lambda w: "/api/v1/inventory/reservations",
        frozenset({"hq_admin", "app", "mini_program"}),
        lambda w: {"location_id": str(w.other.id)} | _stock_lines(w, "checkout-2"),
        out_of_scope=frozenset({"store_manager", "store_staff", "pos"}),
    ),
    Case(
        "inventory_allocation_chain",
        "PUT",
        lambda w: "/api/v1/inventory/allocations",
        frozenset({"hq_admin"}),
        lambda w: {"channel": "app", "share_percent": 80},
    ),
    Case(
        "inventory_allocation_own",
        "PUT",
        lambda w: "/api/v1/inventory/allocations",
        frozenset({"hq_admin", "store_manager"}),
        lambda w: {"channel": "app", "location_id": str(w.own.id), "keep_units": 2},
    ),
    Case(
        "inventory_transfer_request",
        "POST",
        lambda w: "/api/v1/inventory/transfers",
        frozenset({"hq_admin", "store_manager"}),
        lambda w: {
            "from_location_id": str(w.other.id),
            "to_location_id": str(w.own.id),
            "lines": [{"sku_id": w.sku_id, "quantity": 1}],
        },
    ),
    Case(
        "inventory_stocktake_open_other",
        "POST",
        lambda w: "/api/v1/inventory/stocktakes",
        frozenset({"hq_admin"}),
        lambda w: {"location_id": str(w.other.id)},
        out_of_scope=frozenset({"store_manager"}),
    ),
    Case(
        "inventory_availability",
        "GET",
        lambda w: (
            f"/api/v1/inventory/availability?latitude=31.23&longitude=121.47&item={w.sku_id}:1"
        ),
        STOCK_READERS,
    ),
]

MEMBERS_SERVED_BY = frozenset(
    {"hq_admin", "store_manager", "store_staff", "guide", "pos", "app", "mini_program"}
)
MEMBERS_READ_BY = MEMBERS_SERVED_BY | {"analyst"}
POINTS_BOOKED_BY = frozenset({"hq_admin", "pos", "app", "mini_program"})
HQ = frozenset({"hq_admin"})


def _sale(_: World) -> dict[str, Any]:
    return {"source_type": "pos_sale", "source_id": "M-1", "lines": [{"net_fen": 1000}]}


MEMBER_CASES = [
    Case(
        "member_identify",
        "POST",
        lambda w: "/api/v1/members/identify",
        MEMBERS_SERVED_BY,
        lambda w: {"kind": "phone", "value": "13911112222"},
    ),
    Case("member_read", "GET", lambda w: f"/api/v1/members/{w.member_id}", MEMBERS_READ_BY),
    Case(
        "member_overview",
        "GET",
        lambda w: f"/api/v1/members/{w.member_id}/overview",
        MEMBERS_READ_BY,
    ),
    Case(
        "member_profile",
        "PATCH",
        lambda w: f"/api/v1/members/{w.member_id}",
        MEMBERS_SERVED_BY,
        lambda w: {"tags": ["matrix"]},
    ),
    Case(
        "member_consent",
        "PUT",
        lambda w: f"/api/v1/members/{w.member_id}/consents/sms",
        MEMBERS_SERVED_BY,
        lambda w: {"granted": True},
    ),
    Case("member_export", "GET", lambda w: f"/api/v1/members/{w.member_id}/export", HQ),
    Case("member_erase", "POST", lambda w: f"/api/v1/members/{w.member_id}/erase", HQ),
    Case(
        "member_merge",
        "POST",
        lambda w: f"/api/v1/members/{w.member_id}/merge",
        HQ,
        lambda w: {"merged_member_id": w.duplicate_id},
    ),
    Case(
        "points_balance", "GET", lambda w: f"/api/v1/members/{w.member_id}/points", MEMBERS_READ_BY
    ),
    Case(
        "points_history",
        "GET",
        lambda w: f"/api/v1/members/{w.member_id}/points/entries",
        MEMBERS_READ_BY,
    ),
    Case(
        "points_earn",
        "POST",
        lambda w: f"/api/v1/members/{w.member_id}/points/earn",
        POINTS_BOOKED_BY,
        _sale,
    ),
    Case(
        "points_redeem",
        "POST",
        lambda w: f"/api/v1/members/{w.member_id}/points/redeem",
        POINTS_BOOKED_BY,
        lambda w: {"source_type": "order", "source_id": "M-2", "points": 10},
    ),
    Case(
        "points_adjust",
        "POST",
        lambda w: f"/api/v1/members/{w.member_id}/points/adjust",
        HQ,
        lambda w: {"reference": "M-3", "points": 5, "reason": "matrix"},
    ),
]

#: Running guides is the store manager's (her stores) and HQ's; the programme is HQ's.
GUIDE_MANAGERS = frozenset({"hq_admin", "store_manager"})
GUIDE_CASES = [
    Case("guide_program_read", "GET", lambda w: "/api/v1/guide-program", GUIDE_MANAGERS),
    Case(
        "guide_program_change",
        "PUT",
        lambda w: "/api/v1/guide-program",
        frozenset({"hq_admin"}),
        lambda w: {"protection_days": 30},
    ),
    Case("commission_rules_list", "GET", lambda w: "/api/v1/commission-rules", GUIDE_MANAGERS),
    Case(
        "unbound_members_own",
        "GET",
        lambda w: f"/api/v1/stores/{w.own.id}/unbound-members",
        GUIDE_MANAGERS,
    ),
    Case(
        "unbound_members_other",
        "GET",
        lambda w: f"/api/v1/stores/{w.other.id}/unbound-members",
        frozenset({"hq_admin"}),
        out_of_scope=frozenset({"store_manager"}),
    ),
    Case(
        "commission_statements_own",
        "GET",
        lambda w: f"/api/v1/commission-statements/2026-11?store_id={w.own.id}",
        GUIDE_MANAGERS,
    ),
]

CASES = [
    Case("who_am_i", "GET", lambda w: "/api/v1/auth/me", frozenset(EVERYONE)),
    Case(
        "staff_list",
        "GET",
        lambda w: "/api/v1/staff",
        frozenset({"hq_admin", "analyst", "store_manager"}),
    ),
    Case(
        "staff_create",
        "POST",
        lambda w: "/api/v1/staff",
        frozenset({"hq_admin"}),
        lambda w: {
            "username": "matrix.new",
            "display_name": "新员工",
            "role": "store_staff",
            "password": "a-long-password",
            "store_ids": [str(w.own.id)],
        },
    ),
    Case("api_keys_list", "GET", lambda w: "/api/v1/api-keys", frozenset({"hq_admin"})),
    Case(
        "api_key_create",
        "POST",
        lambda w: "/api/v1/api-keys",
        frozenset({"hq_admin"}),
        lambda w: {"name": "matrix", "channel": "app"},
    ),
    Case("stores_list", "GET", lambda w: "/api/v1/stores", frozenset(EVERYONE - {"marketplace"})),
    Case(
        "store_read_own",
        "GET",
        lambda w: f"/api/v1/stores/{w.own.id}",
        frozenset(EVERYONE - {"marketplace"}),
    ),
    Case(
        "store_read_other",
        "GET",
        lambda w: f"/api/v1/stores/{w.other.id}",
        frozenset({"hq_admin", "analyst", "app", "mini_program", "erp"}),
        out_of_scope=frozenset(STORE_BOUND),
    ),
    Case("store_create", "POST", lambda w: "/api/v1/stores", frozenset({"hq_admin"}), _store),
    Case(
        "store_hours_own",
        "PUT",
        lambda w: f"/api/v1/stores/{w.own.id}/hours",
        frozenset({"hq_admin", "store_manager"}),
        _hours,
    ),
    Case(
        "store_hours_other",
        "PUT",
        lambda w: f"/api/v1/stores/{w.other.id}/hours",
        frozenset({"hq_admin"}),
        _hours,
        out_of_scope=frozenset({"store_manager"}),
    ),
    Case(
        "pilot_rule_write",
        "PUT",
        lambda w: "/api/v1/pilot/rules",
        frozenset({"hq_admin"}),
        lambda w: {"feature": "delivery", "scope": "chain", "enabled": True},
    ),
    Case("products_list", "GET", lambda w: "/api/v1/catalog/products", frozenset(EVERYONE)),
    Case(
        "product_create",
        "POST",
        lambda w: "/api/v1/catalog/products",
        frozenset({"hq_admin", "erp"}),
        _product,
    ),
    Case(
        "barcode_own_store",
        "GET",
        lambda w: f"/api/v1/catalog/barcodes/{w.barcode}?store_id={w.own.id}",
        frozenset(EVERYONE),
    ),
    Case(
        "barcode_other_store",
        "GET",
        lambda w: f"/api/v1/catalog/barcodes/{w.barcode}?store_id={w.other.id}",
        frozenset(EVERYONE - STORE_BOUND),
        out_of_scope=frozenset(STORE_BOUND),
    ),
    Case(
        "price_write_own_store",
        "POST",
        lambda w: f"/api/v1/catalog/skus/{w.sku_id}/prices",
        frozenset({"hq_admin", "erp"}),
        lambda w: {"price": 299, "store_id": str(w.own.id)},
    ),
    Case(
        "price_write_other_store",
        "POST",
        lambda w: f"/api/v1/catalog/skus/{w.sku_id}/prices",
        frozenset({"hq_admin", "erp"}),
        lambda w: {"price": 299, "store_id": str(w.other.id)},
    ),
    Case(
        "webhook_subscriptions_list",
        "GET",
        lambda w: "/api/v1/webhooks/subscriptions",
        frozenset({"hq_admin"}),
    ),
    Case(
        "webhook_subscribe",
        "POST",
        lambda w: "/api/v1/webhooks/subscriptions",
        frozenset({"hq_admin"}),
        lambda w: {"url": "https://93.184.215.14/hook", "event_types": ["test.price_tagged"]},
    ),
    Case(
        "webhook_deliveries_list",
        "GET",
        lambda w: "/api/v1/webhooks/deliveries?status=dead",
        frozenset({"hq_admin"}),
    ),
    Case(
        "audit_log_read", "GET", lambda w: "/api/v1/audit", frozenset({"hq_admin", "store_manager"})
    ),
    Case(
        "pause_own_store",
        "POST",
        lambda w: f"/api/v1/stores/{w.own.id}/capabilities/pickup/pause",
        frozenset({"hq_admin", "store_manager"}),
        lambda w: {"until": (utcnow() + timedelta(hours=1)).isoformat(), "reason": "busy"},
    ),
    Case(
        "pause_other_store",
        "POST",
        lambda w: f"/api/v1/stores/{w.other.id}/capabilities/pickup/pause",
        frozenset({"hq_admin"}),
        lambda w: {"until": (utcnow() + timedelta(hours=1)).isoformat(), "reason": "busy"},
        out_of_scope=frozenset({"store_manager"}),
    ),
    Case(
        "missed_promises_of_the_chain",
        "GET",
        lambda w: "/api/v1/fulfillment/missed-promises",
        frozenset({"hq_admin", "analyst", "store_manager"}),
    ),
    Case(
        "missed_promises_of_a_store",
        "GET",
        lambda w: f"/api/v1/fulfillment/stores/{w.own.id}/missed-promises",
        frozenset({"hq_admin", "store_manager", "store_staff"}),
    ),
    Case(
        "on_time_report_own_stores",
        "GET",
        lambda w: (
            "/api/v1/fulfillment/on-time?since=2026-11-01T00:00:00%2B08:00"
            "&until=2026-11-02T00:00:00%2B08:00"
        ),
        frozenset({"hq_admin", "analyst", "store_manager"}),
    ),
    Case(
        "on_time_report_other_store",
        "GET",
        lambda w: (
            "/api/v1/fulfillment/on-time?since=2026-11-01T00:00:00%2B08:00"
            f"&until=2026-11-02T00:00:00%2B08:00&store_id={w.other.id}"
        ),
        frozenset({"hq_admin", "analyst"}),
        out_of_scope=frozenset({"store_manager"}),
    ),
    Case(
        "audit_log_other_store",
        "GET",
        lambda w: f"/api/v1/audit?store_id={w.other.id}",
        frozenset({"hq_admin"}),
        out_of_scope=frozenset({"store_manager"}),
    ),
    Case(
        "event_stream_own_stores",
        "GET",
        lambda w: "/api/v1/events/stream?follow=false",
        frozenset({"hq_admin", "analyst", "store_manager", "store_staff", "pos"}),
    ),
    Case(
        "event_stream_other_store",
        "GET",
        lambda w: f"/api/v1/events/stream?follow=false&store_id={w.other.id}",
        frozenset({"hq_admin", "analyst"}),
        out_of_scope=frozenset({"store_manager", "store_staff", "pos"}),
    ),
    *INVENTORY_CASES,
    *MEMBER_CASES,
    *GUIDE_CASES,
]


@pytest.fixture
def world(factory: Factory) -> World:
    own, other = factory.location(region="静安区"), factory.location(region="徐汇区")
    for store in (own, other):
        stores.set_capability(factory.session, store.id, Capability.PICKUP)
    category = catalog.create_category(factory.session, code="MATRIX", name="矩阵", parent_id=None)
    barcode = "690765432101" + ean.calc_check_digit("690765432101")
    product = catalog.create_product(
        factory.session,
        code="MATRIX-BASE",
        name="基础商品",
        brand=None,
        category_id=category.id,
        kind=ProductKind.STANDARD,
        unit=SaleUnit.PIECE,
        shelf_life_days=None,
        description=None,
        currency="CNY",
        skus=[
            catalog.NewSku(
                code="MATRIX-BASE-1", name="基础商品 1", base_price=500, barcodes=[barcode]
            )
        ],
    )
    for location in (own, other):
        inventory.receive_stock(
            factory.session, location.id, [inventory.ReceiptLine(product.skus[0].id, 5)]
        )
    cipher = members.cipher_for(Settings(secret_key=TEST_SECRET))  # type: ignore[arg-type]
    member, duplicate = (
        members.find_or_create_member(
            factory.session, cipher, IdentityKind.PHONE, phone, via="pos"
        )[0]
        for phone in ("13900000001", "13900000002")
    )
    loyalty.earn_points(
        factory.session, member.id, loyalty.Source(SourceType.CAMPAIGN, "matrix"), 100
    )
    factory.session.commit()
    return World(
        own=own,
        other=other,
        category_id=str(category.id),
        sku_id=str(product.skus[0].id),
        barcode=barcode,
        member_id=str(member.id),
        duplicate_id=str(duplicate.id),
    )


def _headers(factory: Factory, caller: str, world: World) -> dict[str, str]:
    if caller in {r.value for r in Role}:
        stores = [world.own] if caller in STORE_BOUND else None
        return factory.staff_headers(Role(caller), stores)
    channel = Channel(caller)
    return factory.api_key_headers(channel, store=world.own if channel is Channel.POS else None)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("caller", CALLERS)
def test_caller_gets_exactly_the_access_the_role_table_grants(
    client: TestClient, factory: Factory, world: World, caller: str, case: Case
) -> None:
    headers = _headers(factory, caller, world)
    body = case.body(world) if case.body else None
    r = client.request(case.method, case.path(world), headers=headers, json=body)
    if caller in case.allowed:
        assert 200 <= r.status_code < 300, f"{caller} {case.name}: {r.status_code} {r.text}"
    else:
        assert r.status_code == 403, f"{caller} {case.name}: {r.status_code} {r.text}"
        expected = "store-out-of-scope" if caller in case.out_of_scope else "forbidden"
        assert r.json()["type"].endswith("/" + expected), r.text


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_anonymous_caller_gets_401_everywhere(client: TestClient, world: World, case: Case) -> None:
    body = case.body(world) if case.body else None
    r = client.request(case.method, case.path(world), json=body)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
