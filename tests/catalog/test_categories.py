"""The category tree: create, list as a tree or flat, show lineage, rename, move without loops."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from zhongtai.catalog import service
from zhongtai.core.auth.roles import Role

URL = "/api/v1/catalog/categories"


def test_hq_builds_a_tree_and_reads_it_nested_or_flat(client: TestClient, factory: Factory) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    food = client.post(URL, json={"code": "food", "name": "食品"}, headers=admin)
    assert food.status_code == 201, food.text
    fruit = client.post(
        URL, json={"code": "fruit", "name": "水果", "parent_id": food.json()["id"]}, headers=admin
    )
    apples = client.post(
        URL, json={"code": "apple", "name": "苹果", "parent_id": fruit.json()["id"]}, headers=admin
    )
    client.post(
        URL, json={"code": "bakery", "name": "烘焙", "parent_id": food.json()["id"]}, headers=admin
    )
    assert apples.status_code == 201

    tree = client.get(URL, headers=admin).json()
    assert [r["code"] for r in tree] == ["food"]
    assert [c["code"] for c in tree[0]["children"]] == ["bakery", "fruit"]
    assert tree[0]["children"][1]["children"][0]["code"] == "apple"

    flat = client.get(URL, params={"view": "flat"}, headers=admin).json()
    assert [(c["code"], c["depth"]) for c in flat] == [
        ("food", 0),
        ("bakery", 1),
        ("fruit", 1),
        ("apple", 2),
    ]

    detail = client.get(f"{URL}/{apples.json()['id']}", headers=admin).json()
    assert detail["lineage"] == [apples.json()["id"], fruit.json()["id"], food.json()["id"]]


def test_moving_a_category_under_its_own_descendant_gets_409_and_changes_nothing(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    top = catalog.category()
    middle = catalog.category(parent=top)
    leaf = catalog.category(parent=middle)
    for target in (leaf, middle, top):
        r = client.patch(f"{URL}/{top.id}", json={"parent_id": str(target.id)}, headers=admin)
        assert r.status_code == 409, r.text
        assert r.json()["type"].endswith("/conflict")
        assert "loop" in r.json()["detail"]
    session.expire_all()
    assert service.category_lineage(session, leaf.id) == [leaf.id, middle.id, top.id]


def test_a_category_moves_with_its_subtree_and_can_go_back_to_the_root(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    food, drinks = catalog.category(), catalog.category()
    tea = catalog.category(parent=food)
    green = catalog.category(parent=tea)
    r = client.patch(
        f"{URL}/{tea.id}", json={"parent_id": str(drinks.id), "name": "茶"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "茶"
    session.expire_all()
    assert service.category_lineage(session, green.id) == [green.id, tea.id, drinks.id]
    r = client.patch(f"{URL}/{tea.id}", json={"parent_id": None}, headers=admin)
    assert r.json()["parent_id"] is None
    r = client.patch(f"{URL}/{tea.id}", json={"name": "茶叶"}, headers=admin)
    assert r.json()["parent_id"] is None, "leaving parent_id out keeps the category in place"


def test_a_taken_category_code_gets_409_naming_it(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    catalog.category(code="dairy")
    r = client.post(URL, json={"code": "dairy", "name": "乳品"}, headers=admin)
    assert r.status_code == 409
    assert r.json()["type"].endswith("/already-exists")
    assert "'dairy'" in r.json()["detail"]


def test_an_unknown_parent_gets_422_naming_parent_id(client: TestClient, factory: Factory) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.post(
        URL, json={"code": "x", "name": "x", "parent_id": str(factory.new_id())}, headers=admin
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "parent_id"


def test_the_tree_refuses_to_grow_deeper_than_its_limit(
    catalog: CatalogFactory, session: Session, client: TestClient, factory: Factory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    chain = [catalog.category()]
    for _ in range(service.MAX_CATEGORY_DEPTH - 1):
        chain.append(catalog.category(parent=chain[-1]))
    r = client.post(
        URL, json={"code": "deep", "name": "x", "parent_id": str(chain[-1].id)}, headers=admin
    )
    assert r.status_code == 422
    other = catalog.category()
    catalog.category(parent=other)
    r = client.patch(f"{URL}/{other.id}", json={"parent_id": str(chain[-2].id)}, headers=admin)
    assert r.status_code == 422, "16 levels above plus a subtree of 2 is too deep"


def test_store_staff_read_the_tree_but_cannot_change_it(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    clerk = factory.staff_headers(Role.STORE_STAFF)
    category = catalog.category()
    assert client.get(URL, headers=clerk).status_code == 200
    r = client.patch(f"{URL}/{category.id}", json={"name": "改名"}, headers=clerk)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/forbidden")


def test_renaming_to_null_is_refused_naming_the_field(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    admin = factory.staff_headers(Role.HQ_ADMIN)
    category = catalog.category()
    r = client.patch(f"{URL}/{category.id}", json={"name": None}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "name"
