"""Scanning a barcode at the POS: what it is and what it costs here, now, in one query."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests.catalog.conftest import (
    HQ,
    CatalogFactory,
    new_ean13,
    with_check_digit,
    wrong_check_digit,
)
from tests.factories import Factory
from tests.statements import statements_on
from zhongtai.catalog import service
from zhongtai.catalog.models import ProductKind, SaleUnit
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.clock import utcnow

URL = "/api/v1/catalog/barcodes"


def test_a_pos_key_gets_its_stores_override_price_and_other_stores_get_the_base_price(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    here, there = factory.location(), factory.location()
    code = new_ean13()
    sku = catalog.sku(base_price=1000, barcodes=[code])
    override = catalog.override(sku, 850, store=here)

    at_here = client.get(f"{URL}/{code}", headers=factory.api_key_headers(Channel.POS, store=here))
    assert at_here.status_code == 200, at_here.text
    body = at_here.json()
    assert body["price"] == {"amount": 850, "currency": "CNY"}
    assert body["price_source"] == {
        "kind": "override",
        "override_id": str(override.id),
        "scope": "store",
    }
    assert body["store_id"] == str(here.id) and body["channel"] == "pos"
    assert body["symbology"] == "ean13"
    assert body["sku"]["code"] == sku.code and body["sku"]["unit"] == "piece"
    assert body["product"]["name"] == sku.product.name
    assert body["for_sale"] is True

    at_there = client.get(
        f"{URL}/{code}", headers=factory.api_key_headers(Channel.POS, store=there)
    )
    assert at_there.json()["price"]["amount"] == 1000
    assert at_there.json()["price_source"] == {"kind": "base", "override_id": None, "scope": "base"}


def test_a_pos_key_asking_for_another_stores_price_gets_403(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    here, there = factory.location(), factory.location()
    code = new_ean13()
    catalog.sku(barcodes=[code])
    pos = factory.api_key_headers(Channel.POS, store=here)
    r = client.get(f"{URL}/{code}", params={"store_id": str(there.id)}, headers=pos)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/store-out-of-scope")


def test_an_unknown_barcode_is_a_404_problem_and_a_malformed_one_a_422(
    client: TestClient, factory: Factory
) -> None:
    pos = factory.api_key_headers(Channel.POS)
    unknown = client.get(f"{URL}/{new_ean13()}", headers=pos)
    assert unknown.status_code == 404
    assert unknown.json()["type"].endswith("/not-found")
    for bad in (wrong_check_digit(new_ean13()), "12345", "69012345678AB"):
        r = client.get(f"{URL}/{bad}", headers=pos)
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "code"


def test_a_future_override_does_not_apply_until_it_starts_and_an_ended_one_no_more(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    store = factory.location()
    code = new_ean13()
    sku = catalog.sku(base_price=1000, barcodes=[code])
    now = utcnow()
    catalog.override(sku, 500, store=store, valid_from=now + timedelta(days=1))
    catalog.override(
        sku, 600, store=store, valid_from=now - timedelta(days=9), valid_to=now - timedelta(days=2)
    )
    pos = factory.api_key_headers(Channel.POS, store=store)
    assert client.get(f"{URL}/{code}", headers=pos).json()["price"]["amount"] == 1000

    admin = factory.staff_headers(Role.HQ_ADMIN)
    tomorrow = (now + timedelta(days=1, hours=1)).isoformat()
    later = client.get(
        f"/api/v1/catalog/skus/{sku.id}/price",
        params={"store_id": str(store.id), "at": tomorrow},
        headers=admin,
    )
    assert later.status_code == 200, later.text
    assert later.json()["price"]["amount"] == 500


def test_each_channel_gets_its_own_price_and_staff_choose_the_channel(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    code = new_ean13()
    sku = catalog.sku(base_price=1000, barcodes=[code])
    catalog.override(sku, 900, channel=Channel.APP)
    app = factory.api_key_headers(Channel.APP)
    assert client.get(f"{URL}/{code}", headers=app).json()["price"]["amount"] == 900
    r = client.get(f"{URL}/{code}", params={"channel": "pos"}, headers=app)
    assert r.status_code == 422, "an API key cannot ask for another channel's price"
    analyst = factory.staff_headers(Role.ANALYST)
    assert client.get(f"{URL}/{code}", headers=analyst).json()["price"]["amount"] == 1000
    r = client.get(f"{URL}/{code}", params={"channel": "app"}, headers=analyst)
    assert r.json()["price"]["amount"] == 900
    assert r.json()["price_source"]["scope"] == "channel"


def test_a_clerk_of_one_store_sees_that_stores_price_without_asking(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    store = factory.location()
    code = new_ean13()
    sku = catalog.sku(base_price=1000, barcodes=[code])
    catalog.override(sku, 880, store=store)
    clerk = factory.staff_headers(Role.STORE_STAFF, stores=[store])
    assert client.get(f"{URL}/{code}", headers=clerk).json()["price"]["amount"] == 880


def test_a_chain_wide_caller_naming_a_store_that_does_not_exist_gets_422(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    code = new_ean13()
    catalog.sku(barcodes=[code])
    admin = factory.staff_headers(Role.HQ_ADMIN)
    r = client.get(f"{URL}/{code}", params={"store_id": str(factory.new_id())}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "store_id"


def test_a_scale_label_is_priced_for_the_weight_it_carries(
    client: TestClient, factory: Factory, catalog: CatalogFactory
) -> None:
    template = with_check_digit("210012300000")
    catalog.product(
        kind=ProductKind.FRESH,
        unit=SaleUnit.GRAM,
        shelf_life_days=7,
        skus=[catalog.new_sku(base_price=1290, price_per=500, barcodes=[template])],
    )
    label = with_check_digit("210012301234")  # 1,234 g
    pos = factory.api_key_headers(Channel.POS)
    r = client.get(f"{URL}/{label}", headers=pos)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbology"] == "internal"
    assert (body["sku"]["unit"], body["sku"]["price_per"]) == ("gram", 500)
    assert body["weight_grams"] == 1234
    assert body["price"]["amount"] == 1290
    assert body["line_price"] == {"amount": 3184, "currency": "CNY"}  # 1290 * 1234 / 500 = 3183.7


def test_a_deactivated_sku_is_found_but_not_for_sale(
    client: TestClient, factory: Factory, catalog: CatalogFactory, session: Session
) -> None:
    code = new_ean13()
    sku = catalog.sku(barcodes=[code])
    service.update_sku(session, sku.id, is_active=False)
    session.commit()
    r = client.get(f"{URL}/{code}", headers=factory.api_key_headers(Channel.POS))
    assert r.status_code == 200
    assert r.json()["for_sale"] is False


def test_the_lookup_is_one_statement_with_its_overrides_joined(
    session: Session, connection: Connection, factory: Factory, catalog: CatalogFactory
) -> None:
    store = factory.location()
    code = new_ean13()
    sku = catalog.sku(base_price=1000, barcodes=[code, new_ean13()])
    catalog.override(sku, 950, channel=Channel.POS)
    catalog.override(sku, 900, store=store)
    best = catalog.override(sku, 800, store=store, channel=Channel.POS)
    catalog.override(sku, 1, store=factory.location(), channel=Channel.POS)
    store_id, best_id = store.id, best.id
    session.expire_all()
    with statements_on(connection, session) as statements:
        hit = service.lookup_barcode(
            session, code, caller=HQ, store_id=store_id, channel=Channel.POS
        )
    assert len(statements) == 1, statements
    assert hit.priced.price.override_id == best_id
    assert hit.priced.price.amount == 800
