"""Reserve-and-try in a store (paid at the till if bought) and parcels shipped from stores."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests.orders.conftest import NEARBY, Chain, new_id, ok, pay_by_wallet, place, quote, store_step
from tests.statements import recorded_on
from zhongtai.core.auth.roles import Channel
from zhongtai.integrations.providers import Providers
from zhongtai.inventory.models import Reservation
from zhongtai.orders.models import Order, Quote
from zhongtai.stores.models import Location


def test_reserve_and_try_holds_the_items_without_payment_and_a_no_show_frees_them(
    client: TestClient, chain: Chain
) -> None:
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "reserve_try",
            "store_id": str(chain.store.id),
            "lines": chain.basket(1, 1),
        },
    )
    assert q["delivery_fee"] == 0
    order = place(client, chain.app, q["id"])
    assert order["payment_due_at"] is None
    paying = client.post(
        f"/api/v1/orders/{order['id']}/payments", json={"tender": "wechat_pay"}, headers=chain.app
    )
    assert paying.status_code == 409
    queue = ok(
        client.get(f"/api/v1/fulfillment/stores/{chain.store.id}/queue", headers=chain.clerk)
    )
    assert [item["order"]["id"] for item in queue] == [order["id"]]
    for step in ("accept", "start-picking", "pack", "ready"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 1
    cancelled = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel", json={"reason": "no show"}, headers=chain.clerk
        )
    )
    assert cancelled["status"] == "cancelled" and cancelled["refunded_amount"] == 0
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert (balance.on_hand, balance.reserved) == (10, 0)


def test_after_trying_on_the_customer_buys_one_item_at_the_till(
    client: TestClient, chain: Chain
) -> None:
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "reserve_try",
            "store_id": str(chain.store.id),
            "lines": chain.basket(1, 1),
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
    assert visited["status"] == "completed"
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    ok(
        client.post(
            "/api/v1/pos/sales",
            json={
                "client_sale_id": new_id(),
                "lines": [{"sku_id": str(chain.skus[0].id), "quantity": 1}],
                "tenders": [{"type": "bank_card", "amount": 1000}],
            },
            headers=till,
        ),
        201,
    )
    bought, tried = (chain.stock.balance(chain.store, s) for s in chain.skus[:2])
    assert (bought.on_hand, bought.reserved) == (9, 0)
    assert (tried.on_hand, tried.reserved) == (10, 0)


def test_a_parcel_is_split_across_stores_when_no_one_store_has_the_basket(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    second = chain.open_store(latitude=31.3, longitude=121.5)
    extra = chain.stock.sku()
    chain.stock.receive(second, extra, 5)
    body: dict[str, Any] = {
        "fulfillment_type": "ship",
        "address": NEARBY,
        "lines": [*chain.basket(1), {"sku_id": str(extra.id), "quantity": 2}],
    }
    q = quote(client, chain.app, body)
    assert {x["location_id"] for x in q["lines"]} == {str(chain.store.id), str(second.id)}
    assert len(q["sourcing"]["promise"]) > 0
    order = place(client, chain.app, q["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    for step in ("accept", "start-picking", "pack"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    shipped = store_step(
        client, chain.clerk, order["id"], "ship", {"carrier": "SF", "tracking_number": "SF123"}
    )
    assert shipped["status"] == "shipped"
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 9
    assert chain.stock.balance(second, extra).on_hand == 3
    done = store_step(client, chain.clerk, order["id"], "delivered")
    assert done["status"] == "completed"


def _split_parcel_quote(client: TestClient, chain: Chain) -> tuple[Location, Any]:
    """A parcel of a SKU only a new store nearer the customer has, and one only the chain's
    store has: (the new store, the quote, holding stock in both stores)."""
    # The store opened last (the higher id) is nearest: sourcing lists it first.
    nearest = chain.open_store(latitude=NEARBY["latitude"], longitude=NEARBY["longitude"])
    extra = chain.stock.sku()
    chain.stock.receive(nearest, extra, 5)
    body: dict[str, Any] = {
        "fulfillment_type": "ship",
        "address": NEARBY,
        "lines": [{"sku_id": str(extra.id), "quantity": 2}, *chain.basket(1)],
    }
    return nearest, quote(client, chain.app, body)


def test_a_split_parcel_holds_and_releases_its_stores_stock_in_lock_order(
    client: TestClient, chain: Chain, session: Session
) -> None:
    nearest, q = _split_parcel_quote(client, chain)
    assert q["lines"][0]["location_id"] == str(nearest.id)
    session.expire_all()
    stored = session.get(Quote, uuid.UUID(q["id"]))
    assert stored is not None
    held_at = [
        session.get(Reservation, uuid.UUID(r)).location_id  # type: ignore[union-attr]
        for r in stored.reservation_ids
    ]
    # Every later step (pay, pack, hand over, cancel) walks the holds in this order, and every
    # checkout locks stock by (location, SKU): the holds must follow that order too.
    assert held_at == sorted(held_at) == sorted([chain.store.id, nearest.id])


def test_cancelling_an_order_listing_its_holds_out_of_location_order_releases_them_in_it(
    client: TestClient, chain: Chain, session: Session, connection: Connection
) -> None:
    nearest, q = _split_parcel_quote(client, chain)
    order = place(client, chain.app, q["id"])
    # As an order placed before checkouts listed a split parcel's holds in location order.
    stored = session.get(Order, uuid.UUID(order["id"]))
    assert stored is not None and len(stored.reservation_ids) == 2
    stored.reservation_ids = sorted(stored.reservation_ids, reverse=True)
    session.commit()

    def released_at(statement: str, ctx: Any) -> Any:
        if not statement.lstrip().upper().startswith("UPDATE STOCK_BALANCES"):
            return None
        params = ctx.compiled_parameters[0]
        return next(v for k, v in params.items() if k.startswith("location_id"))

    with recorded_on(connection, released_at) as released:
        ok(
            client.post(
                f"/api/v1/orders/{order['id']}/cancel", json={"reason": "left"}, headers=chain.app
            )
        )
    assert released == sorted([chain.store.id, nearest.id])
