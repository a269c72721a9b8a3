"""Builds the demo chain as plain rows from a seed: same seed, same chain, same ids, same keys."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from zhongtai.core.auth.credentials import ApiKeyMaterial
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.demo import sites
from zhongtai.demo.assortment import APPAREL_ROOT, FRESH_ROOT
from zhongtai.demo.catalog import (
    CatalogRows,
    Row,
    build_assortment,
    build_categories,
    build_price_overrides,
)
from zhongtai.demo.seeded import SeededIds, stream
from zhongtai.demo.sites import Site, StoreFormat
from zhongtai.stores.models import Capability, LocationKind, PilotScope

DEMO_PASSWORD = "zhongtai-demo"  # noqa: S105 - public by design: printed by `zhongtai demo`
#: The demo chain's members when no other number is asked for, and the most it can have (one
#: demo phone each at most, and there are that many).
DEFAULT_MEMBERS = 20_000
MAX_MEMBERS = 9_999_999
SURNAMES = "王李张刘陈杨赵黄周吴徐孙朱马胡郭林何高罗"
GIVEN_NAMES = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟",
    "涛", "明", "超", "秀英", "霞", "平", "刚", "婷", "雪", "晨", "浩", "宇", "欣", "佳怡",
)  # fmt: skip
#: Each store's team, in the order ``staff_per_store`` takes it: a manager, two clerks and five
#: shopping guides (导购); logins beyond these are more clerks (``staff9.<code>`` …).
STORE_ROLES = (
    Role.STORE_MANAGER,
    Role.STORE_STAFF,
    Role.STORE_STAFF,
    *(Role.GUIDE,) * 5,
)
STORE_USERNAMES = ("manager", "clerk", "clerk2", "guide", "guide2", "guide3", "guide4", "guide5")
CHANNEL_KEYS = (
    (Channel.APP, "中台 App"),
    (Channel.MINI_PROGRAM, "中台微信小程序"),
    (Channel.MARKETPLACE, "美团闪购"),
    (Channel.ERP, "ERP 主数据同步"),
)
SPRING_FESTIVAL_EVE = date(2026, 2, 16)
SPRING_FESTIVAL = date(2026, 2, 17)
STOCKTAKE_DAY = date(2026, 3, 10)


@dataclass(frozen=True)
class StaffSpec:
    username: str
    display_name: str
    role: Role
    store_code: str | None


@dataclass(frozen=True)
class ApiKeySpec:
    name: str
    channel: Channel
    store_code: str | None
    terminal_id: str | None
    material: ApiKeyMaterial


@dataclass
class DemoChain:
    """Every row of the demo chain, ready for bulk insert; staff and keys go through services."""

    seed: int
    locations: list[Row] = field(default_factory=list)
    capabilities: list[Row] = field(default_factory=list)
    opening_hours: list[Row] = field(default_factory=list)
    opening_exceptions: list[Row] = field(default_factory=list)
    pilot_rules: list[Row] = field(default_factory=list)
    catalog: CatalogRows = field(default_factory=CatalogRows)
    staff: list[StaffSpec] = field(default_factory=list)
    #: The trading format of each store, by code: it sets the store's trade and its rhythm.
    formats: dict[str, StoreFormat] = field(default_factory=dict)
    api_keys: list[ApiKeySpec] = field(default_factory=list)
    #: Members the chain's history signs up, shared over the stores.
    member_count: int = DEFAULT_MEMBERS

    @property
    def stores(self) -> list[Row]:
        return [loc for loc in self.locations if loc["kind"] is LocationKind.STORE]

    def digest(self) -> str:
        """A fingerprint of what a user would notice: codes, ids, prices, barcodes, keys."""
        content = {
            "locations": [
                (r["id"], r["code"], r["latitude"], r["longitude"]) for r in self.locations
            ],
            "pilot_rules": [(r["feature"], r["scope"], r["scope_value"]) for r in self.pilot_rules],
            "skus": [(r["id"], r["code"], r["name"], r["base_price"]) for r in self.catalog.skus],
            "barcodes": [(r["code"], r["sku_id"]) for r in self.catalog.barcodes],
            "prices": [(r["sku_id"], r["price"]) for r in self.catalog.price_overrides],
            "staff": [(s.username, s.display_name) for s in self.staff],
            "keys": [k.material.full_key for k in self.api_keys],
        }
        blob = json.dumps(content, default=str, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def _extra_sites(seed: int, count: int) -> list[Site]:
    """More stores than the named ones: around district centres, on their real streets."""
    rng = stream(seed, "extra-sites")
    south, west, north, east = sites.SHANGHAI_BOUNDS
    names: set[str] = {s.name for s in sites.STORES}
    extra: list[Site] = []
    for i in range(count):
        region, lat, lon, roads = sites.DISTRICTS[i % len(sites.DISTRICTS)]
        road, number = rng.choice(roads), rng.randint(1, 1999)
        name = f"中台超市 {road}店"
        if name in names:
            name = f"中台超市 {road}{number}号店"
        names.add(name)
        convenience = i % 7 == 6
        extra.append(
            Site(
                code=f"SH{len(sites.STORES) + i + 1:03d}",
                name=name.replace("中台超市", "中台便利") if convenience else name,
                region=region,
                address=f"{road} {number} 号",
                latitude=round(min(max(lat + rng.uniform(-0.02, 0.02), south), north), 6),
                longitude=round(min(max(lon + rng.uniform(-0.02, 0.02), west), east), 6),
                format=StoreFormat.CONVENIENCE if convenience else StoreFormat.SUPERMARKET,
                delivery=rng.random() < 0.5,
            )
        )
    return extra


def _weekly_hours(site: Site) -> list[tuple[int, time, time]]:
    if site.format is StoreFormat.CONVENIENCE:
        # opens_at == closes_at: open around the clock.
        return [(day, time(0, 0), time(0, 0)) for day in range(7)]
    if site.format is StoreFormat.DEPARTMENT:
        return [(day, time(10, 0), time(22, 30) if day >= 4 else time(22, 0)) for day in range(7)]
    closes = time(1, 0) if site.overnight else time(22, 0)
    return [(day, time(8, 0), closes) for day in range(7)]


def _capabilities(site: Site) -> list[tuple[Capability, int | None, list[str]]]:
    caps: list[tuple[Capability, int | None, list[str]]] = [(Capability.PICKUP, None, [])]
    if site.delivery:
        radius = 1500 if site.format is StoreFormat.CONVENIENCE else 3000
        caps.append((Capability.DELIVERY, radius, []))
    if site.ship_from_store:
        caps.append((Capability.SHIP_FROM_STORE, None, []))
    if site.format is StoreFormat.SUPERMARKET:
        caps.append((Capability.IN_STORE_SERVICES, None, ["fish_cleaning", "meat_slicing"]))
    elif site.format is StoreFormat.DEPARTMENT:
        caps.append((Capability.IN_STORE_SERVICES, None, ["alterations", "gift_wrapping"]))
    return caps


def _exceptions(site: Site, stocktake: bool) -> list[tuple[date, bool, time | None, str]]:
    if site.format is StoreFormat.CONVENIENCE:
        return []
    opens = time(10, 0) if site.format is StoreFormat.DEPARTMENT else time(8, 0)
    found: list[tuple[date, bool, time | None, str]] = [
        (SPRING_FESTIVAL_EVE, False, opens, "除夕提前至 18:00 打烊"),
        (SPRING_FESTIVAL, False, time(10, 0), "春节 10:00 开门、18:00 打烊"),
    ]
    if stocktake:
        found.append((STOCKTAKE_DAY, True, None, "年度盘点，暂停营业一天"))
    return found


def _build_network(chain: DemoChain, store_count: int) -> list[Site]:
    seed = chain.seed
    rng = stream(seed, "network")
    new_id = SeededIds(seed, "locations")
    named = list(sites.STORES[:store_count])
    stores = named + _extra_sites(seed, store_count - len(named))
    for site, kind in [(s, LocationKind.STORE) for s in stores] + [
        (sites.DC, LocationKind.DC),
        (sites.WAREHOUSE, LocationKind.WAREHOUSE),
    ]:
        location_id = new_id()
        chain.locations.append(
            {
                "id": location_id,
                "code": site.code,
                "name": site.name,
                "kind": kind,
                "region": site.region,
                "city": sites.CITY,
                "address": site.address,
                "latitude": site.latitude,
                "longitude": site.longitude,
                "timezone": sites.TIMEZONE,
                "phone": f"021-{rng.randint(5000, 6999)}{rng.randint(0, 9999):04d}",
            }
        )
        if kind is not LocationKind.STORE:
            continue
        chain.formats[site.code] = site.format
        for capability, radius, services in _capabilities(site):
            chain.capabilities.append(
                {
                    "location_id": location_id,
                    "capability": capability,
                    "delivery_radius_m": radius,
                    "services": services,
                }
            )
        for weekday, starts, ends in _weekly_hours(site):
            chain.opening_hours.append(
                {
                    "id": new_id(),
                    "location_id": location_id,
                    "weekday": weekday,
                    "opens_at": starts,
                    "closes_at": ends,
                }
            )
        for on_date, closed, opens, note in _exceptions(site, stocktake=site.code == "SH007"):
            chain.opening_exceptions.append(
                {
                    "id": new_id(),
                    "location_id": location_id,
                    "on_date": on_date,
                    "closed": closed,
                    "opens_at": opens,
                    "closes_at": None if closed else time(18, 0),
                    "note": note,
                }
            )
    return stores


def _build_pilot_rules(chain: DemoChain, stores: list[Site]) -> None:
    new_id = SeededIds(chain.seed, "pilot-rules")
    ids = {loc["code"]: str(loc["id"]) for loc in chain.locations}
    fresh = str(chain.catalog.category_ids[FRESH_ROOT])
    apparel = str(chain.catalog.category_ids[APPAREL_ROOT])
    rules: list[tuple[str, PilotScope, str, bool, str]] = [
        ("pickup", PilotScope.CHAIN, "*", True, "到店自提：全部门店开通"),
        ("delivery", PilotScope.CHAIN, "*", False, "到家配送分区域试点，默认未开通"),
        *[
            ("delivery", PilotScope.REGION, region, True, "到家配送试点区域")
            for region in sites.DELIVERY_PILOT_REGIONS
        ],
        ("delivery", PilotScope.CATEGORY, fresh, True, "生鲜到家：生鲜品类开通配送"),
        ("delivery", PilotScope.CATEGORY, apparel, False, "服装暂不参与到家配送"),
        ("ship_from_store", PilotScope.CHAIN, "*", False, "门店发货试点，默认未开通"),
        *[
            ("ship_from_store", PilotScope.STORE, ids[s.code], True, f"门店发货试点：{s.name}")
            for s in stores
            if s.ship_from_store
        ],
    ]
    for feature, scope, value, enabled, note in rules:
        chain.pilot_rules.append(
            {
                "id": new_id(),
                "feature": feature,
                "scope": scope,
                "scope_value": value,
                "enabled": enabled,
                "note": note,
            }
        )


def _person(seed: int, username: str) -> str:
    rng = stream(seed, f"person:{username}")
    return rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)


def _key_material(seed: int, slot: str) -> ApiKeyMaterial:
    rng = stream(seed, f"api-key:{slot}")
    secret = base64.urlsafe_b64encode(rng.getrandbits(256).to_bytes(32, "big"))
    return ApiKeyMaterial(prefix=f"{rng.getrandbits(48):012x}", secret=secret.decode().rstrip("="))


def _build_people(chain: DemoChain, staff_per_store: int) -> None:
    seed = chain.seed
    chain.staff.append(StaffSpec("admin", "总部管理员", Role.HQ_ADMIN, None))
    chain.staff.append(
        StaffSpec("analyst", f"数据分析 {_person(seed, 'analyst')}", Role.ANALYST, None)
    )
    for channel, name in CHANNEL_KEYS:
        material = _key_material(seed, channel.value)
        chain.api_keys.append(ApiKeySpec(name, channel, None, None, material))
    for store in chain.stores:
        code = store["code"]
        for n in range(staff_per_store):
            role = STORE_ROLES[n] if n < len(STORE_ROLES) else Role.STORE_STAFF
            prefix = STORE_USERNAMES[n] if n < len(STORE_USERNAMES) else f"staff{n + 1}"
            username = f"{prefix}.{code.lower()}"
            chain.staff.append(StaffSpec(username, _person(seed, username), role, code))
        material = _key_material(seed, f"pos:{code}:T01")
        key_name = f"{store['name']} POS T01"
        chain.api_keys.append(ApiKeySpec(key_name, Channel.POS, code, "T01", material))


def build_chain(
    seed: int = 42,
    *,
    stores: int = 12,
    skus: int = 1000,
    staff_per_store: int = len(STORE_ROLES),
    members: int = DEFAULT_MEMBERS,
) -> DemoChain:
    """The whole demo chain as rows (its ``members`` come with its history). Pure: no
    database, no clock, no global randomness."""
    if stores < 1 or skus < 0 or staff_per_store < 0 or not 0 <= members <= MAX_MEMBERS:
        raise ValueError(
            f"stores must be at least 1; skus and staff_per_store not negative; "
            f"members from 0 to {MAX_MEMBERS:,}"
        )
    chain = DemoChain(seed=seed, catalog=build_categories(seed), member_count=members)
    store_sites = _build_network(chain, stores)
    _build_pilot_rules(chain, store_sites)
    build_assortment(seed, chain.catalog, skus)
    priced_stores = [s["id"] for s in chain.stores if s["code"] in ("SH001", "SH003", "SH011")]
    build_price_overrides(seed, chain.catalog, priced_stores or [chain.stores[0]["id"]])
    _build_people(chain, staff_per_store)
    return chain


def location_id_by_code(chain: DemoChain) -> dict[str, uuid.UUID]:
    return {loc["code"]: loc["id"] for loc in chain.locations}


def summary_counts(chain: DemoChain) -> dict[str, Any]:
    return {
        "stores": len(chain.stores),
        "locations": len(chain.locations),
        "categories": len(chain.catalog.categories),
        "products": len(chain.catalog.products),
        "skus": len(chain.catalog.skus),
        "barcodes": len(chain.catalog.barcodes),
        "price_overrides": len(chain.catalog.price_overrides),
        "pilot_rules": len(chain.pilot_rules),
        "staff": len(chain.staff),
        "guides": sum(1 for s in chain.staff if s.role is Role.GUIDE),
        "api_keys": len(chain.api_keys),
        "members": chain.member_count,
    }
