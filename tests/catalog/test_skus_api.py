"""SKUs through HTTP: read one, change it, attach and detach barcodes; retries are safe."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.catalog.conftest import CatalogFactory, new_ean13, with_check_digit, wrong_check_digit
from tests.factories import Factory
from zhongtai.core.auth.roles import Channel, Role


def sku_url(sku_id: object) -> str:
    return f"/api/v1/catalog/skus/{sku_id}"


def test_a_sku_carries_several_barcodes_and_scans_by_each_until_one_is_removed(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    pos = factory.api_key_headers(Channel.POS)
    first = new_ean13()
    sku = catalog.sku(barcodes=[first])
    inner_pack = with_check_digit("6901234")  # an EAN-8
    r = client.post(f"{sku_url(sku.id)}/barcodes", json={"code": inner_pack}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() == {"code": inner_pack, "symbology": "ean8"}
    shown = client.get(sku_url(sku.id), headers=pos).json()
    assert sorted(b["code"] for b in shown["barcodes"]) == sorted([first, inner_pack])
    for code in (first, inner_pack):
        assert client.get(f"/api/v1/catalog/barcodes/{code}", headers=pos).status_code == 200

    r = client.delete(f"{sku_url(sku.id)}/barcodes/{first}", headers=admin)
    assert r.status_code == 204
    assert client.get(f"/api/v1/catalog/barcodes/{first}", headers=pos).status_code == 404
    assert [b["code"] for b in client.get(sku_url(sku.id), headers=pos).json()["barcodes"]] == [
        inner_pack
    ]
    again = client.delete(f"{sku_url(sku.id)}/barcodes/{first}", headers=admin)
    assert again.status_code == 404


def test_attaching_a_barcode_another_sku_carries_gets_409_naming_both(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    taken = new_ean13()
    owner = catalog.sku(barcodes=[taken])
    other = catalog.sku()
    r = client.post(f"{sku_url(other.id)}/barcodes", json={"code": taken}, headers=admin)
    assert r.status_code == 409
    assert r.json()["type"].endswith("/already-exists")
    assert taken in r.json()["detail"] and owner.code in r.json()["detail"]


def test_attaching_a_malformed_barcode_gets_422_naming_code(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    for bad in (wrong_check_digit(new_ean13()), "123456789", "ABCDEFGH"):
        r = client.post(f"{sku_url(sku.id)}/barcodes", json={"code": bad}, headers=admin)
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "code"


def test_a_sku_is_renamed_and_deactivated_but_its_name_cannot_be_nulled(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    r = client.patch(sku_url(sku.id), json={"name": "新规格", "is_active": False}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["is_active"]) == ("新规格", False)
    r = client.patch(sku_url(sku.id), json={"name": None}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "name"


def test_an_unknown_sku_is_a_404_problem(client: TestClient, factory: Factory) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    r = client.get(sku_url(factory.new_id()), headers=clerk)
    assert r.status_code == 404
    assert r.json()["type"].endswith("/not-found")


def test_retrying_a_product_creation_with_its_idempotency_key_creates_it_once(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    body = {
        "code": "P-RETRY",
        "name": "重试商品",
        "category_id": str(catalog.category().id),
        "skus": [{"code": "RETRY-1", "name": "单件", "base_price": 100, "barcodes": [new_ean13()]}],
    }
    headers = {**admin, "Idempotency-Key": "create-p-retry"}
    first = client.post("/api/v1/catalog/products", json=body, headers=headers)
    second = client.post("/api/v1/catalog/products", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]


def test_attaching_a_barcode_the_sku_carries_again_answers_it_and_changes_nothing(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    """A retried attach whose first answer was lost (no Idempotency-Key) used to get 409
    `already-exists`, as if another SKU carried the code; the route promises 409 only then."""
    admin = factory.staff_headers(Role.HQ_ADMIN)
    sku = catalog.sku()
    code = new_ean13()
    answers = [
        client.post(f"{sku_url(sku.id)}/barcodes", json={"code": code}, headers=admin)
        for _ in range(2)
    ]
    assert [r.status_code for r in answers] == [201, 201], answers[1].text
    assert answers[0].json() == answers[1].json() == {"code": code, "symbology": "ean13"}
    carried = [b["code"] for b in client.get(sku_url(sku.id), headers=admin).json()["barcodes"]]
    assert carried.count(code) == 1
