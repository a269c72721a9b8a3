"""Loading the demo chain writes exactly the generated rows, and its logins and keys work."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Barcode, PriceOverride, Sku
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.demo import DEMO_PASSWORD, DemoChain, build_chain, existing_demo_data
from zhongtai.demo.loader import load_demo_chain
from zhongtai.stores.models import Location, OpeningHours, PilotRule


@pytest.fixture
def chain() -> DemoChain:
    return build_chain(42, stores=2, skus=120, staff_per_store=1, members=100)


def _catalog_fingerprint(skus: Any, barcodes: Any, prices: Any) -> tuple[list[Any], ...]:
    return (sorted(skus), sorted(barcodes), sorted(prices))


def test_loaded_catalog_matches_the_generated_codes_prices_and_barcodes(
    session: Session, chain: DemoChain
) -> None:
    load_demo_chain(session, chain)
    catalog = chain.catalog
    sku_codes = {s["id"]: s["code"] for s in catalog.skus}
    generated = _catalog_fingerprint(
        [(s["code"], s["base_price"], s["price_per"]) for s in catalog.skus],
        [(b["code"], sku_codes[b["sku_id"]]) for b in catalog.barcodes],
        [(o["price"], o["channel"] or "") for o in catalog.price_overrides],
    )
    skus = session.execute(select(Sku.code, Sku.base_price, Sku.price_per))
    barcodes = session.execute(select(Barcode.code, Sku.code).join(Sku))
    prices = session.execute(select(PriceOverride.price, PriceOverride.channel))
    stored = _catalog_fingerprint(
        [tuple(row) for row in skus],
        [tuple(row) for row in barcodes],
        [(price, channel or "") for price, channel in prices],
    )
    assert stored == generated


def test_loaded_stores_keep_their_hours_and_pilot_rules(session: Session, chain: DemoChain) -> None:
    load_demo_chain(session, chain)
    codes = session.scalars(select(Location.code).order_by(Location.code)).all()
    assert {"SH001", "SH002", "SHDC01", "SHWH01"} <= set(codes)
    store = session.scalar(select(Location).where(Location.code == "SH001"))
    assert store is not None and len(store.hours) == 7
    assert {c.capability.value for c in store.capabilities} >= {"pickup", "delivery"}
    hours = session.scalar(select(func.count()).select_from(OpeningHours))
    assert hours == len(chain.opening_hours)
    rules = session.scalar(select(func.count()).select_from(PilotRule))
    assert rules == len(chain.pilot_rules)


def test_demo_logins_work_with_the_demo_password(session: Session, chain: DemoChain) -> None:
    load_demo_chain(session, chain)
    admin = auth.check_password(session, "admin", DEMO_PASSWORD)
    manager = auth.check_password(session, "manager.sh002", DEMO_PASSWORD)
    assert admin is not None and admin.role is Role.HQ_ADMIN
    assert manager is not None and manager.role is Role.STORE_MANAGER
    store = session.scalar(select(Location).where(Location.code == "SH002"))
    assert store is not None and manager.store_ids == [store.id]
    assert auth.check_password(session, "admin", "not-the-password") is None


def test_demo_pos_key_is_bound_to_its_store_and_terminal(
    session: Session, chain: DemoChain
) -> None:
    load_demo_chain(session, chain)
    pos = next(k for k in chain.api_keys if k.channel is Channel.POS and k.store_code == "SH001")
    principal = auth.principal_for_api_key(session, pos.material.full_key)
    store_id = session.scalar(select(Location.id).where(Location.code == "SH001"))
    assert principal is not None
    assert principal.channel is Channel.POS and principal.terminal_id == "T01"
    assert principal.store_ids == frozenset({store_id})


def test_a_loaded_chain_is_recognised_so_it_is_not_loaded_twice(
    session: Session, chain: DemoChain
) -> None:
    assert existing_demo_data(session, chain) is None
    load_demo_chain(session, chain)
    assert existing_demo_data(session, chain) == "location SH001 exists"


def test_an_admin_named_like_the_demos_blocks_loading(session: Session, chain: DemoChain) -> None:
    auth.create_staff_user(
        session, username="admin", display_name="Real admin", role=Role.HQ_ADMIN, password="x" * 12
    )
    assert existing_demo_data(session, chain) == "staff user 'admin' exists"
