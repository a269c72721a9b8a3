"""The demo chain is reproducible from its seed and looks like a real Shanghai chain."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import time

import pytest
from stdnum import ean

from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.demo import build_chain, demo_credentials
from zhongtai.demo.generator import summary_counts
from zhongtai.demo.sites import SHANGHAI_BOUNDS
from zhongtai.stores.models import Capability, LocationKind, PilotScope
from zhongtai.stores.rules import PilotSwitch, pilot_decision


def test_the_same_seed_builds_the_same_chain_down_to_ids_prices_and_keys() -> None:
    first, again = build_chain(7, skus=300), build_chain(7, skus=300)
    assert first.digest() == again.digest()
    assert [s["id"] for s in first.catalog.skus] == [s["id"] for s in again.catalog.skus]
    assert build_chain(8, skus=300).digest() != first.digest()


def test_ids_are_uuid7_so_they_sort_like_the_ids_of_real_rows() -> None:
    chain = build_chain(1, skus=50)
    ids = [row["id"] for row in chain.catalog.skus]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)


def test_a_bigger_catalog_keeps_the_same_stores_logins_and_keys() -> None:
    small, large = build_chain(42, skus=10), build_chain(42, skus=800)
    assert small.locations == large.locations
    assert [k.material for k in small.api_keys] == [k.material for k in large.api_keys]
    assert small.staff == large.staff


@pytest.mark.parametrize("skus", [0, 1, 37, 1000])
def test_the_catalog_has_exactly_the_requested_number_of_skus(skus: int) -> None:
    assert len(build_chain(3, stores=2, skus=skus).catalog.skus) == skus


def test_every_barcode_is_a_unique_valid_ean13_under_a_chinese_gs1_prefix() -> None:
    barcodes = [b["code"] for b in build_chain(5, skus=5000).catalog.barcodes]
    assert len(barcodes) == len(set(barcodes))
    for code in barcodes:
        assert len(code) == 13 and ean.is_valid(code), code
        assert 690 <= int(code[:3]) <= 699, code


def test_some_skus_carry_a_second_barcode_and_every_sku_has_one() -> None:
    chain = build_chain(5, skus=2000)
    per_sku = Counter(b["sku_id"] for b in chain.catalog.barcodes)
    assert set(per_sku) == {s["id"] for s in chain.catalog.skus}
    assert 0 < sum(1 for n in per_sku.values() if n == 2) < len(per_sku) // 5


def test_every_location_lies_inside_shanghai_even_beyond_the_named_stores() -> None:
    chain = build_chain(9, stores=60, skus=0)
    south, west, north, east = SHANGHAI_BOUNDS
    assert len(chain.stores) == 60
    assert len({loc["code"] for loc in chain.locations}) == 62
    for loc in chain.locations:
        assert south <= loc["latitude"] <= north and west <= loc["longitude"] <= east, loc
    kinds = Counter(loc["kind"] for loc in chain.locations)
    assert kinds[LocationKind.DC] == 1 and kinds[LocationKind.WAREHOUSE] == 1


def test_the_named_stores_spread_over_the_city_districts() -> None:
    regions = {store["region"] for store in build_chain(42, skus=0).stores}
    assert {"黄浦区", "静安区", "徐汇区", "浦东新区", "杨浦区", "闵行区"} <= regions
    assert len(regions) >= 8


def test_fresh_goods_are_sold_by_the_gram_priced_per_jin_with_a_short_shelf_life() -> None:
    catalog = build_chain(11, skus=1000).catalog
    fresh = [p for p in catalog.products if p["kind"] is ProductKind.FRESH]
    assert fresh
    for product in fresh:
        assert product["unit"] is SaleUnit.GRAM
        assert 2 <= product["shelf_life_days"] <= 10
    fresh_ids = {p["id"] for p in fresh}
    for sku in catalog.skus:
        assert sku["price_per"] == (500 if sku["product_id"] in fresh_ids else 1)
        assert isinstance(sku["base_price"], int) and sku["base_price"] > 0


def test_apparel_comes_in_size_and_colour_variants_of_one_product() -> None:
    catalog = build_chain(11, skus=1000).catalog
    apparel = {p["id"] for p in catalog.products if p["kind"] is ProductKind.APPAREL}
    variants = [s for s in catalog.skus if s["product_id"] in apparel]
    assert variants and all(s["size"] and s["colour"] for s in variants)
    keys = [(s["product_id"], s["size"], s["colour"]) for s in variants]
    assert len(keys) == len(set(keys))
    per_product = Counter(s["product_id"] for s in variants)
    assert max(per_product.values()) >= 6


def test_hours_include_a_24_hour_store_and_one_open_past_midnight() -> None:
    chain = build_chain(42, skus=0)
    spans = {(h["opens_at"], h["closes_at"]) for h in chain.opening_hours}
    assert (time(0, 0), time(0, 0)) in spans
    assert any(closes < opens for opens, closes in spans)
    assert (time(8, 0), time(22, 0)) in spans
    hours_per_store = Counter(h["location_id"] for h in chain.opening_hours)
    assert set(hours_per_store.values()) == {7}
    assert len(hours_per_store) == len(chain.stores)


def test_capabilities_pick_up_everywhere_deliver_within_a_radius_and_clean_fish() -> None:
    chain = build_chain(42, skus=0)
    caps = chain.capabilities
    pickup = {c["location_id"] for c in caps if c["capability"] is Capability.PICKUP}
    assert pickup == {s["id"] for s in chain.stores}
    radii = {c["delivery_radius_m"] for c in caps if c["capability"] is Capability.DELIVERY}
    assert 3000 in radii
    services = [c["services"] for c in caps if c["capability"] is Capability.IN_STORE_SERVICES]
    assert any("fish_cleaning" in s for s in services)
    assert any("alterations" in s for s in services)


def test_pilots_deliver_in_two_regions_fresh_not_apparel_and_ship_from_three_stores() -> None:
    chain = build_chain(42, skus=0)
    rules = {(r["feature"], r["scope"], r["scope_value"]): r["enabled"] for r in chain.pilot_rules}
    assert rules[("delivery", PilotScope.CHAIN, "*")] is False
    regions = [k[2] for k, on in rules.items() if k[:2] == ("delivery", PilotScope.REGION) and on]
    assert len(regions) == 2
    fresh_id = str(chain.catalog.category_ids["FRESH"])
    assert rules[("delivery", PilotScope.CATEGORY, fresh_id)] is True
    apparel_id = str(chain.catalog.category_ids["APPAREL"])
    assert rules[("delivery", PilotScope.CATEGORY, apparel_id)] is False
    pilot_stores = {k[2] for k in rules if k[:2] == ("ship_from_store", PilotScope.STORE)}
    shipping = {
        str(c["location_id"])
        for c in chain.capabilities
        if c["capability"] is Capability.SHIP_FROM_STORE
    }
    assert len(pilot_stores) == 3 and pilot_stores == shipping


def test_some_skus_have_online_channel_prices_and_a_few_stores_local_prices() -> None:
    chain = build_chain(42, skus=2000)
    overrides = chain.catalog.price_overrides
    channels = {o["channel"] for o in overrides if o["store_id"] is None}
    assert {Channel.APP.value, Channel.MINI_PROGRAM.value} <= channels
    stores = {o["store_id"] for o in overrides if o["store_id"] is not None}
    assert 1 <= len(stores) <= 3 and stores <= {s["id"] for s in chain.stores}
    ended = [o for o in overrides if o["valid_to"] is not None]
    assert ended and all(o["valid_to"] > o["valid_from"] for o in ended)


def test_each_store_has_a_manager_two_clerks_and_five_guides_and_hq_an_admin_and_analyst() -> None:
    chain = build_chain(42, skus=0)
    staff = {s.username: s for s in chain.staff}
    assert staff["admin"].role is Role.HQ_ADMIN and staff["admin"].store_code is None
    assert staff["analyst"].role is Role.ANALYST
    for store in chain.stores:
        code = store["code"].lower()
        assert staff[f"manager.{code}"].role is Role.STORE_MANAGER
        assert staff[f"clerk.{code}"].role is Role.STORE_STAFF
        assert staff[f"clerk2.{code}"].role is Role.STORE_STAFF
        for guide in ("guide", "guide2", "guide3", "guide4", "guide5"):
            assert staff[f"{guide}.{code}"].role is Role.GUIDE
            assert staff[f"{guide}.{code}"].store_code == store["code"]
    assert len(chain.staff) == 2 + 8 * len(chain.stores)
    assert summary_counts(chain)["guides"] == 60


def test_fewer_staff_per_store_keep_the_same_first_logins() -> None:
    full, four = build_chain(42, skus=0), build_chain(42, skus=0, staff_per_store=4)
    per_store = {s.username for s in four.staff if s.store_code == "SH001"}
    assert per_store == {"manager.sh001", "clerk.sh001", "clerk2.sh001", "guide.sh001"}
    assert set(four.staff) <= set(full.staff)


def test_credentials_list_every_login_one_pos_key_per_store_and_each_channel() -> None:
    chain = build_chain(42, stores=3, skus=200)
    summary = demo_credentials(chain)
    assert {"admin", "manager.sh001", "clerk.sh003"} <= {x["username"] for x in summary["logins"]}
    pos = [k for k in summary["api_keys"] if k["channel"] == "pos"]
    assert sorted(k["store_code"] for k in pos) == ["SH001", "SH002", "SH003"]
    assert {k["terminal_id"] for k in pos} == {"T01"}
    channels = {k["channel"] for k in summary["api_keys"]}
    assert channels == {c.value for c in Channel}
    assert len({k["key"] for k in summary["api_keys"]}) == len(summary["api_keys"])
    kinds = {b["kind"] for b in summary["sample_barcodes"]}
    assert {"fresh", "packaged", "apparel"} <= kinds


def test_pilot_rules_as_the_stores_context_reads_them_deliver_only_where_piloted() -> None:
    chain = build_chain(42, skus=0)
    switches = [
        PilotSwitch(r["feature"], r["scope"], r["scope_value"], r["enabled"])
        for r in chain.pilot_rules
    ]
    stores = {s["code"]: s for s in chain.stores}
    fresh, apparel = (chain.catalog.category_ids[c] for c in ("FRESH", "APPAREL"))

    def delivers(code: str, category: uuid.UUID | None) -> bool:
        store = stores[code]
        lineage = [] if category is None else [category]
        return pilot_decision(
            switches,
            feature="delivery",
            store_id=store["id"],
            region=store["region"],
            category_lineage=lineage,
        ).enabled

    assert delivers("SH002", None) and delivers("SH003", fresh)  # 静安区, 徐汇区
    assert not delivers("SH001", None)  # 黄浦区 is not in the pilot
    assert not delivers("SH002", apparel)
