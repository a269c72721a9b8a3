"""Products with their SKUs and barcodes through HTTP: create, validate, conflict, change, list."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.catalog.conftest import CatalogFactory, new_ean13, with_check_digit, wrong_check_digit
from tests.factories import Factory
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.auth.roles import Role

URL = "/api/v1/catalog/products"


def product_body(category_id: Any, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "P-COLA",
        "name": "可口可乐 330ml",
        "brand": "可口可乐",
        "category_id": str(category_id),
        "skus": [
            {"code": "COLA-330", "name": "单罐", "base_price": 350, "barcodes": [new_ean13()]},
            {
                "code": "COLA-330x6",
                "name": "六连包",
                "base_price": 1990,
                "barcodes": [new_ean13(), new_ean13()],
            },
        ],
    }
    body.update(over)
    return body


def test_hq_creates_a_product_with_its_skus_and_barcodes_in_one_request(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    body = product_body(catalog.category().id)
    r = client.post(URL, json=body, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["kind"] == "standard" and created["unit"] == "piece"
    skus = {s["code"]: s for s in created["skus"]}
    assert skus["COLA-330"]["base_price"] == {"amount": 350, "currency": "CNY"}
    assert skus["COLA-330"]["price_per"] == 1
    six = skus["COLA-330x6"]
    assert sorted(b["code"] for b in six["barcodes"]) == sorted(body["skus"][1]["barcodes"])
    assert {b["symbology"] for b in six["barcodes"]} == {"ean13"}

    again = client.get(f"{URL}/{created['id']}", headers=factory.staff_headers(Role.STORE_STAFF))
    assert again.status_code == 200
    assert again.json()["skus"] == created["skus"]


def test_a_barcode_another_sku_carries_gets_409_naming_the_code_and_creates_nothing(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    taken = new_ean13()
    catalog.sku(barcodes=[taken])
    body = product_body(catalog.category().id)
    body["skus"][1]["barcodes"] = [taken]
    r = client.post(URL, json=body, headers=admin)
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/already-exists")
    assert taken in r.json()["detail"]
    assert r.json()["code"] == taken
    listed = client.get(URL, params={"q": "P-COLA"}, headers=admin).json()
    assert listed["items"] == []


def test_a_taken_sku_code_or_product_code_gets_409_naming_it(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    category = catalog.category()
    assert client.post(URL, json=product_body(category.id), headers=admin).status_code == 201
    same_code = client.post(URL, json=product_body(category.id), headers=admin)
    assert same_code.status_code == 409
    assert "'P-COLA'" in same_code.json()["detail"]
    sku_taken = client.post(URL, json=product_body(category.id, code="P-OTHER"), headers=admin)
    assert sku_taken.status_code == 409
    assert "'COLA-330'" in sku_taken.json()["detail"]


def test_a_barcode_with_a_bad_check_digit_gets_422_naming_the_field(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    body = product_body(catalog.category().id)
    body["skus"][1]["barcodes"][1] = wrong_check_digit(body["skus"][1]["barcodes"][1])
    r = client.post(URL, json=body, headers=admin)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    error = r.json()["errors"][0]
    assert error["field"] == "skus.1.barcodes.1"
    assert "check digit" in error["message"]


def test_fresh_weighed_goods_need_a_shelf_life_and_the_grams_their_price_is_for(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    scale_code = with_check_digit("210012300000")
    body = product_body(
        catalog.category().id,
        code="P-APPLE",
        name="红富士苹果",
        kind="fresh",
        unit="gram",
        skus=[{"code": "APPLE", "name": "散装", "base_price": 1200, "barcodes": [scale_code]}],
    )
    r = client.post(URL, json=body, headers=admin)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"shelf_life_days", "skus.0.price_per"}
    body["shelf_life_days"] = 14
    body["skus"][0]["price_per"] = 500
    r = client.post(URL, json=body, headers=admin)
    assert r.status_code == 201, r.text
    sku = r.json()["skus"][0]
    assert (sku["unit"], sku["price_per"]) == ("gram", 500)
    assert sku["barcodes"] == [{"code": scale_code, "symbology": "internal"}]


def test_apparel_comes_in_size_and_colour_variants_each_once(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    variants = [("S", "黑", "BK"), ("M", "黑", "BK"), ("M", "白", "WH")]
    body = product_body(
        catalog.category().id,
        code="P-TEE",
        kind="apparel",
        skus=[
            {
                "code": f"TEE-{s}-{code}",
                "name": f"{s} {c}",
                "size": s,
                "colour": c,
                "base_price": 9900,
            }
            for s, c, code in variants
        ],
    )
    r = client.post(URL, json=body, headers=admin)
    assert r.status_code == 201, r.text
    product_id = r.json()["id"]
    twin = {
        "code": "TEE-M-BLACK-2",
        "name": "M 黑",
        "size": "M",
        "colour": "黑",
        "base_price": 9900,
    }
    r = client.post(f"{URL}/{product_id}/skus", json=twin, headers=admin)
    assert r.status_code == 409
    assert "TEE-M-BK" in r.json()["detail"]
    no_colour = {"code": "TEE-L", "name": "L", "size": "L", "base_price": 9900}
    r = client.post(f"{URL}/{product_id}/skus", json=no_colour, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "colour"
    r = client.post(f"{URL}/{product_id}/skus", json={**no_colour, "colour": "红"}, headers=admin)
    assert r.status_code == 201
    assert len(client.get(f"{URL}/{product_id}", headers=admin).json()["skus"]) == 4


def test_products_are_listed_a_page_at_a_time_with_a_cursor(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    category = catalog.category()
    made = [catalog.product(category=category).id for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "category_id": str(category.id)}
        if cursor:
            params["cursor"] = cursor
        r = client.get(URL, params=params, headers=clerk)
        assert r.status_code == 200, r.text
        seen += [p["id"] for p in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(i) for i in made]
    bad = client.get(URL, params={"cursor": "not-a-cursor"}, headers=clerk)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"


def test_listing_filters_by_category_and_below_by_search_and_by_kind(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    food = catalog.category()
    fruit = catalog.category(parent=food)
    elsewhere = catalog.category()
    apple = catalog.product(
        category=fruit,
        kind=ProductKind.FRESH,
        unit=SaleUnit.GRAM,
        shelf_life_days=10,
        name="红富士苹果",
    )
    bread = catalog.product(category=food, name="全麦面包")
    catalog.product(category=elsewhere, name="苹果手机壳")

    def ids(**params: Any) -> set[str]:
        r = client.get(URL, params=params, headers=clerk)
        assert r.status_code == 200, r.text
        return {p["id"] for p in r.json()["items"]}

    assert ids(category_id=str(food.id)) == {str(apple.id), str(bread.id)}
    assert ids(category_id=str(fruit.id)) == {str(apple.id)}
    assert ids(category_id=str(food.id), q="苹果") == {str(apple.id)}
    assert ids(category_id=str(food.id), kind="fresh") == {str(apple.id)}
    assert ids(q=bread.skus[0].code) == {str(bread.id)}
    assert ids(q=bread.skus[0].barcodes[0].code) == {str(bread.id)}
    assert ids(q="100%") == set(), "wildcards in the search are taken literally"


def test_patching_a_product_changes_only_what_is_sent_and_keeps_fresh_goods_dated(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    product = catalog.product(kind=ProductKind.FRESH, unit=SaleUnit.GRAM, shelf_life_days=5)
    r = client.patch(f"{URL}/{product.id}", json={"is_active": False, "brand": None}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["is_active"], r.json()["brand"], r.json()["shelf_life_days"]) == (
        False,
        None,
        5,
    )
    r = client.patch(f"{URL}/{product.id}", json={"shelf_life_days": None}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "shelf_life_days"
    r = client.patch(f"{URL}/{product.id}", json={"kind": "apparel"}, headers=admin)
    assert r.status_code == 409
    r = client.patch(f"{URL}/{product.id}", json={"name": None}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "name"


def test_a_pos_key_reads_the_catalog_but_cannot_write_it(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    from zhongtai.core.auth.roles import Channel

    pos = factory.api_key_headers(Channel.POS)
    category = catalog.category()
    assert client.get(URL, headers=pos).status_code == 200
    r = client.post(URL, json=product_body(category.id), headers=pos)
    assert r.status_code == 403
