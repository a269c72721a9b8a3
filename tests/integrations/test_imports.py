"""Back-office imports: each row loads or is named with its line; a batch loads once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory, new_ean13
from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from zhongtai.catalog.models import PriceOverride, Sku
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.inventory.verify import verify_stock


@pytest.fixture
def catalog(session: Session, factory: Factory) -> CatalogFactory:
    return CatalogFactory(session, factory)


@pytest.fixture
def stock(session: Session, factory: Factory) -> StockFactory:
    return StockFactory(session, factory)


def _send(
    client: TestClient,
    headers: dict[str, str],
    kind: str,
    batch_id: str,
    content: str,
    content_type: str = "text/csv",
) -> Any:
    return client.post(
        f"/api/v1/imports/{kind}",
        params={"batch_id": batch_id},
        content=content.encode(),
        headers={**headers, "Content-Type": content_type},
    )


def test_a_product_master_loads_good_rows_names_bad_lines_and_loads_once(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    fruit = catalog.category(code="FRUIT")
    existing = catalog.product(category=fruit)
    sku = existing.skus[0]
    erp = factory.api_key_headers(Channel.ERP)
    barcode = new_ean13()
    content = (
        "product_code,product_name,category_code,kind,unit,sku_code,sku_name,base_price,barcode\n"
        f"APPLE,红富士苹果,FRUIT,standard,piece,APPLE-1,单个,350,{barcode}\n"
        f"{existing.code},{existing.name},FRUIT,standard,piece,{sku.code},规格,1290,\n"
        "PEAR,梨,NO-SUCH,standard,piece,PEAR-1,单个,abc,\n"
    )
    answer = _send(client, erp, "products", "erp-2026-11-26-1", content)
    assert answer.status_code == 201, answer.text
    report = answer.json()
    assert (report["rows_loaded"], report["rows_rejected"]) == (2, 1)
    outcomes = {r["line"]: r for r in report["report"]}
    assert outcomes[2]["outcome"] == "created"
    assert outcomes[3]["outcome"] == "updated" and outcomes[3]["changes"]["base_price"] == 1290
    assert outcomes[4]["outcome"] == "rejected"
    assert {p["field"] for p in outcomes[4]["problems"]} == {"base_price"}
    again = _send(client, erp, "products", "erp-2026-11-26-1", content)
    assert again.status_code == 200 and again.json() == report
    assert session.scalar(select(func.count()).select_from(Sku).where(Sku.code == "APPLE-1")) == 1
    other = _send(client, erp, "products", "erp-2026-11-26-1", content.replace("350", "360"))
    assert other.status_code == 409


def test_a_row_failing_in_the_catalog_is_rejected_whole_and_the_next_row_still_loads(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    catalog.category(code="VEG")
    erp = factory.api_key_headers(Channel.ERP)
    content = (
        "product_code,product_name,category_code,sku_code,sku_name,base_price\n"
        "CAB,白菜,MISSING,CAB-1,一颗,200\n"
        "LET,生菜,VEG,LET-1,一颗,300\n"
    )
    report = _send(client, erp, "products", "veg-1", content).json()
    assert [r["outcome"] for r in report["report"]] == ["rejected", "created"]
    assert report["report"][0]["problems"] == [
        {"field": "category_code", "message": "no category MISSING"}
    ]
    assert session.scalar(select(func.count()).select_from(Sku).where(Sku.code == "CAB-1")) == 0


def test_a_stock_snapshot_brings_on_hand_to_the_count_and_reports_the_variance(
    client: TestClient, factory: Factory, stock: StockFactory, session: Session
) -> None:
    dc = stock.location(code="DC01")
    sku = stock.sku()
    stock.receive(dc, sku, 10)
    wms = factory.staff_headers(Role.HQ_ADMIN)
    rows = [
        {"location_code": "DC01", "sku_code": sku.code, "on_hand": 7},
        {"location_code": "DC01", "sku_code": "NOPE", "on_hand": 3},
        {"location_code": "DC01", "sku_code": sku.code, "on_hand": -1},
    ]
    answer = _send(client, wms, "stock", "wms-snap-1", json.dumps(rows), "application/json")
    assert answer.status_code == 201, answer.text
    first, unknown, negative = answer.json()["report"]
    assert (first["on_hand_before"], first["on_hand_after"], first["variance"]) == (10, 7, -3)
    assert unknown["problems"][0] == {"field": "sku_code", "message": "no SKU NOPE"}
    assert negative["problems"][0]["field"] == "on_hand"
    assert stock.balance(dc, sku).on_hand == 7
    assert verify_stock(session) == []


def test_prices_load_per_store_and_channel_and_a_bad_channel_is_named(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    sku = catalog.sku()
    store = factory.location(code="SH009")
    session.commit()
    erp = factory.api_key_headers(Channel.ERP)
    content = (
        "sku_code,price,store_code,channel,valid_from\n"
        f"{sku.code},990,SH009,app,2026-12-01T00:00:00+08:00\n"
        f"{sku.code},980,,fax,\n"
    )
    report = _send(client, erp, "prices", "prices-1", content).json()
    assert [r["outcome"] for r in report["report"]] == ["created", "rejected"]
    assert report["report"][1]["problems"][0]["field"] == "channel"
    override = session.scalars(select(PriceOverride).where(PriceOverride.sku_id == sku.id)).one()
    assert (override.price, override.store_id, override.channel) == (990, store.id, "app")


def test_a_store_clerk_may_not_import_and_an_unreadable_batch_is_422(
    client: TestClient, factory: Factory
) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    assert _send(client, clerk, "products", "x", "a,b\n1,2\n").status_code == 403
    hq = factory.staff_headers(Role.HQ_ADMIN)
    broken = _send(client, hq, "stock", "y", "{not json", "application/json")
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "body"
