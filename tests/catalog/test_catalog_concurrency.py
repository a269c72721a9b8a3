"""On PostgreSQL, racing writers cannot share a barcode nor close a loop in the category tree."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select

from tests.catalog.conftest import new_ean13
from tests.live_server import LiveServer
from tests.races import MANY_CONNECTIONS, hq_admin_headers, race_server, requests_at_once
from zhongtai.catalog import service
from zhongtai.catalog.models import Barcode, Category

pytestmark = MANY_CONNECTIONS
CLIENTS = 16


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with race_server("zt_catalog") as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> dict[str, str]:
    return hq_admin_headers(server.db, "catalog-admin")


def test_sixteen_products_racing_for_one_barcode_one_wins_the_rest_get_409(
    server: LiveServer, admin: dict[str, str]
) -> None:
    with server.db.writer() as s, s.begin():
        category = service.create_category(s, code="race", name="race")
    barcode = new_ean13()

    def create(i: int) -> Callable[[httpx.Client], httpx.Response]:
        body = {
            "code": f"RACE-{i}",
            "name": "抢码",
            "category_id": str(category.id),
            "skus": [
                {"code": f"RACE-SKU-{i}", "name": "x", "base_price": 1, "barcodes": [barcode]}
            ],
        }
        return lambda c: c.post(f"{server.url}/api/v1/catalog/products", json=body, headers=admin)

    responses = requests_at_once([create(i) for i in range(CLIENTS)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (CLIENTS - 1), [r.text for r in responses]
    assert all(barcode in r.json()["detail"] for r in responses if r.status_code == 409)
    with server.db.reader() as s:
        assert s.scalar(select(func.count()).where(Barcode.code == barcode)) == 1


def test_opposite_moves_racing_never_close_a_loop(
    server: LiveServer, admin: dict[str, str]
) -> None:
    pairs = []
    with server.db.writer() as s, s.begin():
        for i in range(CLIENTS // 2):
            a = service.create_category(s, code=f"loop-a{i}", name="a")
            b = service.create_category(s, code=f"loop-b{i}", name="b")
            pairs.append((a.id, b.id))

    def move(child: object, parent: object) -> Callable[[httpx.Client], httpx.Response]:
        url = f"{server.url}/api/v1/catalog/categories/{child}"
        return lambda c: c.patch(url, json={"parent_id": str(parent)}, headers=admin)

    calls = [move(a, b) for a, b in pairs] + [move(b, a) for a, b in pairs]
    responses = requests_at_once(calls)
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    with server.db.reader() as s:
        for a, b in pairs:
            rows = s.execute(select(Category.id, Category.parent_id).where(Category.id.in_([a, b])))
            parents = {child: parent for child, parent in rows}
            assert not (parents[a] == b and parents[b] == a), "a loop of two categories"
            assert parents[a] == b or parents[b] == a, "one of the two moves succeeded"
