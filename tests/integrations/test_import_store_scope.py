"""Import batches belong to the stores their rows name: a caller bound to some stores reads and
lists only those stores' batches, another store's batch answers exactly as no batch at all
(404), and HQ sees every batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.catalog.conftest import CatalogFactory
from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.stores.models import Location


@pytest.fixture
def stock(session: Session, factory: Factory) -> StockFactory:
    return StockFactory(session, factory)


def _snapshot(
    client: TestClient, headers: dict[str, str], batch_id: str, rows: list[dict[str, Any]]
) -> Any:
    return client.post(
        "/api/v1/imports/stock",
        params={"batch_id": batch_id},
        content=json.dumps(rows).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )


def _made(
    client: TestClient, headers: dict[str, str], batch_id: str, rows: list[dict[str, Any]]
) -> Any:
    answer = _snapshot(client, headers, batch_id, rows)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _read(client: TestClient, headers: dict[str, str], batch_id: str) -> Any:
    return client.get(f"/api/v1/imports/batches/{batch_id}", headers=headers)


def _count(store: Location, sku_code: str, on_hand: int) -> dict[str, Any]:
    return {"location_code": store.code, "sku_code": sku_code, "on_hand": on_hand}


def _listed(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    """Every batch id the caller's listing shows, page after page."""
    ids: list[str] = []
    cursor = None
    while True:
        r = client.get(
            "/api/v1/imports/batches",
            headers=headers,
            params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})},
        )
        assert r.status_code == 200, r.text
        ids += [b["batch_id"] for b in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return ids


def _without(problem: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """The problem with the batch id asked for taken out, to compare two answers."""
    return {k: str(v).replace(batch_id, "<id>") for k, v in problem.items()}


def test_another_stores_batch_answers_as_no_batch_at_all_and_its_own_store_reads_it(
    client: TestClient, factory: Factory, stock: StockFactory
) -> None:
    mine, theirs = stock.location(), stock.location()
    sku = stock.sku()
    stock.receive(theirs, sku, 10)
    hq = factory.staff_headers(Role.HQ_ADMIN)
    made = _made(client, hq, "wms-theirs-1", [_count(theirs, sku.code, 7)])

    manager_here = factory.staff_headers(Role.STORE_MANAGER, [mine])
    hidden = _read(client, manager_here, "wms-theirs-1")
    absent = _read(client, manager_here, "wms-nothing-1")
    assert (hidden.status_code, absent.status_code) == (404, 404)
    assert hidden.headers["content-type"] == absent.headers["content-type"]
    assert _without(hidden.json(), "wms-theirs-1") == _without(absent.json(), "wms-nothing-1")
    assert "on_hand_before" not in hidden.text

    manager_there = factory.staff_headers(Role.STORE_MANAGER, [theirs])
    assert _read(client, manager_there, "wms-theirs-1").json() == made
    assert _read(client, hq, "wms-theirs-1").json() == made


def test_a_batch_naming_two_stores_is_read_only_by_a_caller_of_both(
    client: TestClient, factory: Factory, stock: StockFactory
) -> None:
    one, two = stock.location(), stock.location()
    sku = stock.sku()
    hq = factory.staff_headers(Role.HQ_ADMIN)
    _made(client, hq, "wms-both-1", [_count(one, sku.code, 3), _count(two, sku.code, 4)])
    only_one = factory.staff_headers(Role.STORE_MANAGER, [one])
    both = factory.staff_headers(Role.STORE_MANAGER, [one, two])
    assert _read(client, only_one, "wms-both-1").status_code == 404
    assert _read(client, both, "wms-both-1").status_code == 200


def test_listings_show_a_store_its_own_batches_and_hq_every_batch(
    client: TestClient, factory: Factory, stock: StockFactory
) -> None:
    mine, theirs = stock.location(), stock.location()
    sku = stock.sku()
    here = factory.staff_headers(Role.STORE_MANAGER, [mine])
    there = factory.staff_headers(Role.STORE_MANAGER, [theirs])
    hq = factory.staff_headers(Role.HQ_ADMIN)
    for n in range(3):
        _made(client, here, f"list-mine-{n}", [_count(mine, sku.code, n)])
    _made(client, there, "list-theirs", [_count(theirs, sku.code, 5)])
    _made(client, hq, "list-hq-both", [_count(mine, sku.code, 1), _count(theirs, sku.code, 1)])

    assert _listed(client, here) == ["list-mine-0", "list-mine-1", "list-mine-2"]
    assert _listed(client, there) == ["list-theirs"]
    everything = set(_listed(client, hq))
    assert {
        "list-mine-0",
        "list-mine-1",
        "list-mine-2",
        "list-theirs",
        "list-hq-both",
    } <= everything
    assert not {b for b in _listed(client, hq, kind="products") if b.startswith("list-")}


def test_a_chain_wide_batch_is_hq_s_and_a_store_bound_key_reads_its_own_products_batch(
    client: TestClient, factory: Factory, stock: StockFactory, session: Session
) -> None:
    store = stock.location()
    hq_erp = factory.api_key_headers(Channel.ERP)
    store_erp = factory.api_key_headers(Channel.ERP, store=store)
    category = "SCOPE-CAT"
    CatalogFactory(session, factory).category(code=category)
    content = (
        "product_code,product_name,category_code,sku_code,sku_name,base_price\n"
        f"SC-1,桃,{category},SC-1-1,一个,300\n"
    )
    for headers, batch_id in ((hq_erp, "chain-products"), (store_erp, "store-products")):
        r = client.post(
            "/api/v1/imports/products",
            params={"batch_id": batch_id},
            content=content.replace("SC-1", batch_id).encode(),
            headers={**headers, "Content-Type": "text/csv"},
        )
        assert r.status_code == 201, r.text
    assert _read(client, store_erp, "chain-products").status_code == 404
    assert _read(client, store_erp, "store-products").status_code == 200
    assert _read(client, hq_erp, "store-products").status_code == 200
    assert _listed(client, store_erp) == ["store-products"]


def test_resending_another_stores_batch_id_replays_nothing_of_it(
    client: TestClient, factory: Factory, stock: StockFactory
) -> None:
    mine, theirs = stock.location(), stock.location()
    sku = stock.sku()
    stock.receive(theirs, sku, 10)
    stock.receive(mine, sku, 10)
    hq = factory.staff_headers(Role.HQ_ADMIN)
    rows = [_count(theirs, sku.code, 7)]
    _made(client, hq, "wms-resent-1", rows)
    here = factory.staff_headers(Role.STORE_MANAGER, [mine])
    same = _snapshot(client, here, "wms-resent-1", rows)
    other = _snapshot(client, here, "wms-resent-1", [_count(mine, sku.code, 2)])
    assert (same.status_code, other.status_code) == (409, 409)
    assert same.json() == other.json(), "the answer tells nothing of the other batch's content"
    assert "on_hand" not in same.text
    balance = stock.balance(mine, sku)
    assert balance is not None and balance.on_hand == 10
