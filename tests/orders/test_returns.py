"""Returns and refunds at their edges: what a line still holds after a short pick or a
substitute, a parcel split over stores, a try-on that sold nothing, and a retry sent while
the first return is still at work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import Factory
from tests.orders.conftest import (
    NEARBY,
    Chain,
    deliver_parcel,
    new_id,
    ok,
    pay_by_wallet,
    place,
    quote,
    store_step,
)
from tests.races import all_at_once, race_database, stock_of
from zhongtai.catalog import service as catalog
from zhongtai.catalog.models import ProductKind, SaleUnit, Sku
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission, Role
from zhongtai.core.db import Database
from zhongtai.integrations.providers import Providers
from zhongtai.inventory import service as inventory
from zhongtai.orders import pos, returns
from zhongtai.orders.kinds import OrderStatus, TenderType
from zhongtai.orders.models import Order
from zhongtai.orders.tender_rules import Tender

#: A till's retries of one return, sent while the first is still at work.
RETRIES = 8


def _paid_parcel(
    client: TestClient, chain: Chain, providers: Providers, lines: list[dict[str, Any]]
) -> Any:
    """A parcel order the customer paid by wallet (similar substitutes allowed)."""
    q = quote(client, chain.app, {"fulfillment_type": "ship", "address": NEARBY, "lines": lines})
    order = place(client, chain.app, q["id"], substitution="similar")
    pay_by_wallet(client, providers, chain.app, order["id"])
    return order


def _return(
    client: TestClient, chain: Chain, order: Any, lines: list[dict[str, Any]], status: int = 201
) -> Any:
    return ok(
        client.post(
            f"/api/v1/orders/{order['id']}/returns",
            json={"reference": new_id(), "store_id": str(chain.store.id), "lines": lines},
            headers=chain.clerk,
        ),
        status,
    )


def test_returning_the_picked_units_of_a_substituted_line_refunds_only_what_they_cost(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _paid_parcel(client, chain, providers, chain.basket(3))
    line = order["lines"][0]
    assert (line["quantity"], line["net_amount"]) == (3, 3000)
    # One unit found; two replaced by a similar SKU at 8.00 the customer keeps: 16.00 charged
    # for the substitutes, 4.00 refunded at the pack.
    similar = chain.similar_sku(chain.skus[0], price=800)
    substitute = {"sku_id": str(similar.id), "quantity": 2}
    done = deliver_parcel(
        client,
        chain,
        order["id"],
        {"picks": [{"line_id": line["id"], "picked": 1, "substitute": substitute}]},
    )
    assert done["lines"][0]["short_refund"] == 400

    returned = _return(client, chain, order, [{"line_id": line["id"], "quantity": 1}])

    assert returned["refund_total"] == 1000  # the one unit of the ordered SKU, at 10.00
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert after["refunded_amount"] == 400 + 1000


def _substituted(client: TestClient, chain: Chain, providers: Providers) -> tuple[Any, Any, Sku]:
    """A delivered parcel of 3 units at 10.00 of which 1 was found and 2 replaced by a similar
    SKU at 8.00 (16.00 charged for the substitutes, 4.00 refunded at the pack); the order, its
    line and the substitute SKU."""
    order = _paid_parcel(client, chain, providers, chain.basket(3))
    line = order["lines"][0]
    similar = chain.similar_sku(chain.skus[0], price=800)
    substitute = {"sku_id": str(similar.id), "quantity": 2}
    deliver_parcel(
        client,
        chain,
        order["id"],
        {"picks": [{"line_id": line["id"], "picked": 1, "substitute": substitute}]},
    )
    return order, line, similar


def test_a_substitute_comes_back_refunding_what_it_cost_onto_its_own_shelf(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order, line, similar = _substituted(client, chain, providers)
    shelf_before = chain.stock.balance(chain.store, similar).on_hand  # type: ignore[union-attr]

    first = _return(
        client, chain, order, [{"line_id": line["id"], "quantity": 1, "substitute": True}]
    )
    second = _return(
        client, chain, order, [{"line_id": line["id"], "quantity": 1, "substitute": True}]
    )

    assert (first["refund_total"], second["refund_total"]) == (800, 800)
    assert first["lines"][0]["substitute"] is True
    assert chain.stock.balance(chain.store, similar).on_hand == shelf_before + 2  # type: ignore[union-attr]
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    # The customer keeps the unit of the ordered SKU: the order is not wholly returned.
    assert (after["status"], after["refunded_amount"]) == ("partially_returned", 400 + 1600)
    assert after["lines"][0]["substitute_returned_quantity"] == 2
    refused = _return(
        client, chain, order, [{"line_id": line["id"], "quantity": 1, "substitute": True}], 422
    )
    assert refused["errors"][0]["field"] == "lines[0].quantity"


def test_an_order_whose_substitute_is_kept_is_not_wholly_returned_until_it_comes_back(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order, line, _ = _substituted(client, chain, providers)
    own = _return(client, chain, order, [{"line_id": line["id"], "quantity": 1}])
    assert own["refund_total"] == 1000
    kept = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert kept["status"] == "partially_returned"

    rest = _return(
        client, chain, order, [{"line_id": line["id"], "quantity": 2, "substitute": True}]
    )

    assert rest["refund_total"] == 1600
    back = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (back["status"], back["refunded_amount"]) == ("returned", 3000)


def test_one_return_brings_back_a_line_and_its_substitute_and_a_line_without_one_cannot(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order, line, _ = _substituted(client, chain, providers)
    both = _return(
        client,
        chain,
        order,
        [
            {"line_id": line["id"], "quantity": 1},
            {"line_id": line["id"], "quantity": 2, "substitute": True, "condition": "damaged"},
        ],
    )
    assert both["refund_total"] == 2600
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == (
        "returned"
    )
    plain = _paid_parcel(client, chain, providers, chain.basket(1))
    deliver_parcel(client, chain, plain["id"])
    refused = _return(
        client,
        chain,
        plain,
        [{"line_id": plain["lines"][0]["id"], "quantity": 1, "substitute": True}],
        422,
    )
    assert refused["errors"][0]["field"] == "lines[0].substitute"


def test_returning_the_rest_of_a_short_picked_line_refunds_only_what_was_paid(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _paid_parcel(client, chain, providers, chain.basket(3))
    line = order["lines"][0]
    done = deliver_parcel(
        client, chain, order["id"], {"picks": [{"line_id": line["id"], "picked": 2}]}
    )
    assert done["refunded_amount"] == 1000  # the unit never picked, refunded at the pack

    first = _return(client, chain, order, [{"line_id": line["id"], "quantity": 1}])
    second = _return(client, chain, order, [{"line_id": line["id"], "quantity": 1}])
    # The short-picked unit never reached the customer: it cannot come back a second time.
    refused = _return(client, chain, order, [{"line_id": line["id"], "quantity": 1}], 409)

    assert (first["refund_total"], second["refund_total"]) == (1000, 1000)
    assert refused["order_status"] == "returned"
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert after["refunded_amount"] == 3000 == line["net_amount"]
    assert after["lines"][0]["returned_refund"] + after["lines"][0]["short_refund"] == 3000


def test_a_parcel_split_over_two_stores_comes_back_whole_in_one_return(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    # Neither store holds 15 of the SKU: the parcel takes it from both, as two lines.
    second = chain.open_store(latitude=31.3, longitude=121.5)
    chain.stock.receive(second, chain.skus[0], 10)
    order = _paid_parcel(client, chain, providers, chain.basket(15))
    assert [x["sku_id"] for x in order["lines"]] == [str(chain.skus[0].id)] * 2
    deliver_parcel(client, chain, order["id"])
    shelf = chain.stock.balance(chain.store, chain.skus[0])
    assert shelf is not None
    before = shelf.on_hand

    returned = _return(
        client,
        chain,
        order,
        [{"line_id": x["id"], "quantity": x["quantity"]} for x in order["lines"]],
    )

    assert returned["refund_total"] == 15 * 1000
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == before + 15  # type: ignore[union-attr]
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert after["status"] == "returned"


def test_a_try_on_order_sells_nothing_so_nothing_of_it_comes_back_against_it(
    client: TestClient, chain: Chain
) -> None:
    # The customer tried the item on and took it: the till rang it up as a sale of its own,
    # and the try-on order completes unpaid, its hold released.
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "reserve_try",
            "store_id": str(chain.store.id),
            "lines": chain.basket(1),
        },
    )
    order = place(client, chain.app, q["id"])
    for step in ("accept", "start-picking", "pack", "ready"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    code = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))["pickup"]
    visited = ok(
        client.post(
            "/api/v1/fulfillment/pickups",
            json={"order": order["number"], "code": code["code"]},
            headers=chain.clerk,
        )
    )
    assert (visited["status"], visited["paid_amount"]) == ("completed", 0)
    shelf = chain.stock.balance(chain.store, chain.skus[0])
    assert shelf is not None and shelf.on_hand == 10

    answer = client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={
            "reference": new_id(),
            "store_id": str(chain.store.id),
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}],
        },
        headers=chain.clerk,
    )

    assert answer.status_code == 409, answer.text
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 10  # type: ignore[union-attr]
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (after["status"], after["refunded_amount"]) == ("completed", 0)


def test_a_return_reference_sent_again_answers_the_first_return_once(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _paid_parcel(client, chain, providers, chain.basket(2))
    order = deliver_parcel(client, chain, order["id"])
    body = {
        "reference": new_id(),
        "store_id": str(chain.store.id),
        "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}],
    }
    url = f"/api/v1/orders/{order['id']}/returns"
    first = ok(client.post(url, json=body, headers=chain.clerk), 201)
    again = ok(client.post(url, json=body, headers=chain.clerk), 200)
    assert again["id"] == first["id"]
    assert (
        ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["refunded_amount"]
        == first["refund_total"]
    )


def test_a_return_reference_used_again_for_other_lines_is_refused_and_refunds_nothing(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _paid_parcel(client, chain, providers, chain.basket(2))
    order = deliver_parcel(client, chain, order["id"])
    reference, line = new_id(), order["lines"][0]["id"]
    url = f"/api/v1/orders/{order['id']}/returns"
    store = str(chain.store.id)
    first = {"reference": reference, "store_id": store, "lines": [{"line_id": line, "quantity": 1}]}
    ok(client.post(url, json=first, headers=chain.clerk), 201)
    other = {**first, "lines": [{"line_id": line, "quantity": 2}]}
    refused = client.post(url, json=other, headers=chain.clerk)
    assert refused.status_code == 409, refused.text
    assert "another return" in refused.json()["detail"]
    assert (
        ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["refunded_amount"]
        == 1000
    )


def test_a_clerk_of_another_store_learns_nothing_of_a_return_by_its_reference(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _paid_parcel(client, chain, providers, chain.basket(1))
    order = deliver_parcel(client, chain, order["id"])
    body = {
        "reference": new_id(),
        "store_id": str(chain.store.id),
        "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}],
    }
    ok(client.post(f"/api/v1/orders/{order['id']}/returns", json=body, headers=chain.clerk), 201)
    elsewhere = chain.open_store(latitude=31.30)
    stranger = chain.factory.staff_headers(Role.STORE_STAFF, [elsewhere])
    chain.session.commit()
    answer = client.post(f"/api/v1/orders/{order['id']}/returns", json=body, headers=stranger)
    assert answer.status_code == 403, answer.text
    assert "refund_total" not in answer.json()


# --- on PostgreSQL: a till retrying a return still at work ------------------------------------


@pytest.fixture
def race_db() -> Iterator[Database]:
    with race_database("zt_return_race", pool_size=RETRIES + 2) as database:
        yield database


def _till_sale_of_two(
    db: Database,
) -> tuple[Principal, uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A store selling one SKU (10 on hand), its till, and a paid cash sale of two units:
    (the till, the store, the SKU, the order, its line)."""
    with db.writer() as s, s.begin():
        store = Factory(s).location()
        category = catalog.create_category(s, code=f"RET{store.code}", name="r", parent_id=None)
        product = catalog.create_product(
            s,
            code=f"RET{store.code}",
            name="退货",
            category_id=category.id,
            kind=ProductKind.STANDARD,
            unit=SaleUnit.PIECE,
            currency="CNY",
            skus=[catalog.NewSku(code=f"RET{store.code}-0", name="0", base_price=1000)],
        )
        sku_id = product.skus[0].id
        inventory.receive_stock(s, store.id, [inventory.ReceiptLine(sku_id, 10)])
        till = Principal(
            kind="api_key",
            id=uuid.uuid4(),
            name="till",
            permissions=frozenset(Permission),
            store_ids=frozenset({store.id}),
            channel=Channel.POS,
            terminal_id="T1",
        )
        sale = pos.record_till_sale(
            s,
            pos.PosSale(
                client_sale_id=uuid.uuid4(),
                store_id=store.id,
                terminal_code="T1",
                lines=[pos.PosLine(sku_id, 2)],
                tenders=[Tender(TenderType.CASH, 2000)],
            ),
            caller=till,
        )
        assert sale.order is not None
        return till, store.id, sku_id, sale.order.id, sale.order.lines[0].id


@pytest.mark.postgres_only
@pytest.mark.xdist_group("postgres_many_connections")
def test_a_return_sent_again_while_the_first_is_still_at_work_answers_the_first(
    race_db: Database,
) -> None:
    till, store_id, sku_id, order_id, line_id = _till_sale_of_two(race_db)
    reference = f"R-{uuid.uuid4()}"

    def send(_: int) -> str:
        try:
            with race_db.writer() as s, s.begin():
                done = returns.return_goods(
                    s,
                    order_id,
                    reference=reference,
                    store_id=store_id,
                    lines=[returns.ReturnLine(line_id, 1)],
                    reason=None,
                    caller=till,
                    providers={},
                )
                return str(done.order_return.id)
        except Exception as failed:  # the outcome compared below: each send's answer
            return type(failed).__name__

    answers = all_at_once(RETRIES, send)

    assert len(set(answers)) == 1, answers
    with race_db.reader() as s:
        order = s.get(Order, order_id)
        assert order is not None
        assert (order.status, order.refunded_amount) == (OrderStatus.PARTIALLY_RETURNED, 1000)
    assert stock_of(race_db, store_id, sku_id) == (9, 0)
