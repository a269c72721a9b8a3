"""Thirty-minute delivery from the nearest store: sourcing, promise, rider callbacks, returns."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.orders.conftest import (
    FAR_AWAY,
    NEARBY,
    Chain,
    new_id,
    ok,
    pay_by_wallet,
    place,
    quote,
    store_step,
)
from zhongtai.core.errors import Conflict
from zhongtai.fulfillment import courier
from zhongtai.fulfillment.models import CourierDispatch, DispatchStatus
from zhongtai.integrations.providers import Providers


def _forward_courier(client: TestClient, providers: Providers, courier_ref: str) -> list[int]:
    fleet: Any = providers.couriers["simulated"]
    return [
        client.post(
            "/api/v1/couriers/callbacks/simulated", content=c.body, headers=c.headers
        ).status_code
        for c in fleet.signed_callbacks(courier_ref)
    ]


def _packed_delivery(client: TestClient, chain: Chain, providers: Providers, *qty: int) -> Any:
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(*qty)},
    )
    order = place(client, chain.app, q["id"], substitution="similar")
    pay_by_wallet(client, providers, chain.app, order["id"])
    store_step(client, chain.clerk, order["id"], "accept")
    store_step(client, chain.clerk, order["id"], "start-picking")
    store_step(client, chain.clerk, order["id"], "pack", {"packages": 2})
    return q, order


def test_delivery_quote_promises_within_30_minutes_and_charges_the_delivery_fee(
    client: TestClient, chain: Chain
) -> None:
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(1)},
    )
    assert q["sourcing"]["within_target"] is True
    assert q["sourcing"]["promise"]["minutes"] <= 30
    assert q["delivery_fee"] == 600 and q["total"] == q["subtotal"] + 600
    assert q["promised_by"] is not None


def test_an_address_outside_every_radius_gets_409_with_each_stores_reason_and_holds_nothing(
    client: TestClient, chain: Chain
) -> None:
    answer = client.post(
        "/api/v1/checkout/quotes",
        json={"fulfillment_type": "delivery", "address": FAR_AWAY, "lines": chain.basket(1)},
        headers=chain.app,
    )
    # 22 km away: not even inside the 20 km search box, so no candidate is listed at all.
    assert answer.status_code == 409
    assert answer.json()["type"].endswith("/no-store-can-fulfil")
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0


def test_a_store_short_of_stock_is_explained_and_another_store_is_chosen(
    client: TestClient, chain: Chain
) -> None:
    second = chain.open_store(latitude=31.2354, longitude=121.4737)
    chain.stock.receive(second, chain.skus[0], 50)
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(20)},
    )
    assert q["store_id"] == str(second.id)
    verdicts = {c["store_id"]: c for c in q["sourcing"]["candidates"]}
    assert verdicts[str(chain.store.id)]["reasons"] == ["missing_stock"]
    assert verdicts[str(second.id)]["chosen"] is True


def test_rider_callbacks_send_the_order_out_and_complete_it_once_even_when_repeated(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _, order = _packed_delivery(client, chain, providers, 2)
    booked = ok(
        client.post(
            f"/api/v1/fulfillment/orders/{order['id']}/dispatch", json={}, headers=chain.clerk
        ),
        201,
    )
    fleet: Any = providers.couriers["simulated"]
    for _ in range(3):  # assigned, arrived at store, picked up
        fleet.advance(booked["courier_ref"])
    assert set(_forward_courier(client, providers, booked["courier_ref"])) == {204}
    mid = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert mid["status"] == "out_for_delivery"
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert (balance.on_hand, balance.reserved) == (8, 0)

    fleet.advance(booked["courier_ref"])  # delivered
    assert set(_forward_courier(client, providers, booked["courier_ref"])) == {204}
    # Everything again, as a platform retrying would: nothing changes twice.
    assert set(_forward_courier(client, providers, booked["courier_ref"])) == {204}
    done = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert done["status"] == "completed"
    assert done["courier"]["status"] == "delivered"
    assert done["courier"]["rider"]["phone"].startswith("138****")
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 8


def test_a_forged_rider_callback_is_refused_and_changes_nothing(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _, order = _packed_delivery(client, chain, providers, 1)
    booked = ok(
        client.post(
            f"/api/v1/fulfillment/orders/{order['id']}/dispatch", json={}, headers=chain.clerk
        ),
        201,
    )
    fleet: Any = providers.couriers["simulated"]
    for _ in range(4):
        fleet.advance(booked["courier_ref"])
    last = fleet.signed_callbacks(booked["courier_ref"])[-1]
    forged = last.body.replace(b"delivered", b"delivered ")
    answer = client.post(
        "/api/v1/couriers/callbacks/simulated", content=forged, headers=last.headers
    )
    assert answer.status_code == 401
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == "packed"


def test_a_short_pick_is_refunded_at_once_and_its_stock_freed(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    q = quote(
        client,
        chain.app,
        {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(3, 1)},
    )
    order = place(client, chain.app, q["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    store_step(client, chain.clerk, order["id"], "accept")
    store_step(client, chain.clerk, order["id"], "start-picking")
    first = order["lines"][0]
    packed = store_step(
        client,
        chain.clerk,
        order["id"],
        "pack",
        {"picks": [{"line_id": first["id"], "picked": 1}]},
    )
    line = packed["lines"][0]
    assert line["picked_quantity"] == 1
    assert line["short_refund"] == 2000  # two of three units at 10.00 each
    assert packed["refunded_amount"] == 2000
    refunds = ok(client.get(f"/api/v1/orders/{order['id']}/refunds", headers=chain.app))
    assert [(r["tender"], r["amount"], r["reason"]) for r in refunds] == [
        ("wechat_pay", 2000, "short_pick")
    ]
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert (balance.on_hand, balance.reserved) == (10, 1)


def test_bought_online_returned_in_another_store_goes_back_on_that_shelf_and_refunds_once(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    _, order = _packed_delivery(client, chain, providers, 2, 1)
    booked = ok(
        client.post(
            f"/api/v1/fulfillment/orders/{order['id']}/dispatch", json={}, headers=chain.clerk
        ),
        201,
    )
    fleet: Any = providers.couriers["simulated"]
    for _ in range(4):
        fleet.advance(booked["courier_ref"])
    _forward_courier(client, providers, booked["courier_ref"])

    other = chain.open_store(latitude=31.25, longitude=121.45)
    from zhongtai.core.auth.roles import Role

    other_clerk = chain.factory.staff_headers(Role.STORE_STAFF, [other])
    found = ok(
        client.get("/api/v1/orders/lookup", params={"number": order["number"]}, headers=other_clerk)
    )
    line = found["lines"][0]
    body = {
        "reference": new_id(),
        "store_id": str(other.id),
        "lines": [{"line_id": line["id"], "quantity": 1}],
        "reason": "size",
    }
    returned = ok(
        client.post(f"/api/v1/orders/{order['id']}/returns", json=body, headers=other_clerk), 201
    )
    assert returned["refund_total"] == 1000
    assert [r["tender"] for r in returned["refunds"]] == ["wechat_pay"]
    again = client.post(f"/api/v1/orders/{order['id']}/returns", json=body, headers=other_clerk)
    assert again.status_code == 200 and again.json()["id"] == returned["id"]
    assert chain.stock.balance(other, chain.skus[0]).on_hand == 1
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert after["status"] == "partially_returned"
    assert after["refunded_amount"] == 1000

    too_many = client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={**body, "reference": new_id(), "lines": [{"line_id": line["id"], "quantity": 2}]},
        headers=other_clerk,
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "lines[0].quantity"


def _booked(client: TestClient, chain: Chain, providers: Providers, *steps: int) -> Any:
    """A packed delivery with a rider booked; the fleet takes ``steps`` steps without calling
    back yet."""
    _, order = _packed_delivery(client, chain, providers, 2)
    booked = ok(
        client.post(
            f"/api/v1/fulfillment/orders/{order['id']}/dispatch", json={}, headers=chain.clerk
        ),
        201,
    )
    fleet: Any = providers.couriers["simulated"]
    for _ in range(*steps):
        fleet.advance(booked["courier_ref"])
    return order, booked


def _cancel(client: TestClient, chain: Chain, order: Any) -> Any:
    return client.post(
        f"/api/v1/orders/{order['id']}/cancel",
        json={"reason": "customer changed their mind"},
        headers=chain.clerk,
    )


def test_cancelling_a_packed_delivery_calls_its_rider_off_and_refunds_it(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order, booked = _booked(client, chain, providers, 1)  # a rider accepted the job
    assert set(_forward_courier(client, providers, booked["courier_ref"])) == {204}
    cancelled = ok(_cancel(client, chain, order))
    assert cancelled["status"] == "cancelled"
    assert cancelled["refunded_amount"] == cancelled["paid_amount"] > 0
    fleet: Any = providers.couriers["simulated"]
    with pytest.raises(Conflict, match="cancelled"):  # a rider called off has no next step
        fleet.advance(booked["courier_ref"])
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert tracking["courier"]["status"] == "cancelled"
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert (balance.on_hand, balance.reserved) == (10, 0)


def test_a_delivery_whose_rider_already_has_the_parcel_cannot_be_cancelled_and_changes_nothing(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    # The rider collected the parcel; its callback has not reached us yet.
    order, _ = _booked(client, chain, providers, 3)
    refused = _cancel(client, chain, order)
    assert refused.status_code == 409, refused.text
    assert "picked" in refused.json()["detail"]
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (after["status"], after["refunded_amount"]) == ("packed", 0)
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 2


def test_a_late_rider_callback_for_a_cancelled_order_is_acknowledged_and_changes_no_order(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order, booked = _booked(client, chain, providers, 2)  # assigned, arrived: not called back
    ok(_cancel(client, chain, order))
    # The platform's callbacks from before the call-off arrive now, as a retrying one sends them.
    assert set(_forward_courier(client, providers, booked["courier_ref"])) == {204}
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert (tracking["status"], tracking["courier"]["status"]) == ("cancelled", "cancelled")


def _return_all(client: TestClient, chain: Chain, order: Any) -> Any:
    return client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={
            "reference": new_id(),
            "store_id": str(chain.store.id),
            "lines": [{"line_id": x["id"], "quantity": x["quantity"]} for x in order["lines"]],
            "reason": "parcel back",
        },
        headers=chain.clerk,
    )


def test_a_parcel_the_rider_could_not_deliver_comes_back_as_a_return_of_its_goods(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order, booked = _booked(client, chain, providers, 3)  # the rider has the parcel
    fleet: Any = providers.couriers["simulated"]
    fleet.fail(booked["courier_ref"], "customer unreachable")
    assert set(_forward_courier(client, providers, booked["courier_ref"])) == {204}
    tracking = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))
    assert (tracking["status"], tracking["courier"]["status"]) == ("out_for_delivery", "failed")
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 8  # with the rider

    back = ok(_return_all(client, chain, order), 201)
    assert back["refund_total"] == 2000  # the goods; the delivery fee paid for the ride
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (after["status"], after["refunded_amount"]) == ("returned", 2000)
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert (balance.on_hand, balance.reserved) == (10, 0)


def test_a_parcel_still_on_its_way_cannot_be_returned_and_changes_nothing(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order, booked = _booked(client, chain, providers, 3)
    assert set(_forward_courier(client, providers, booked["courier_ref"])) == {204}
    refused = _return_all(client, chain, order)
    assert refused.status_code == 409, refused.text
    assert "out_for_delivery" in refused.json()["detail"]
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (after["status"], after["refunded_amount"]) == ("out_for_delivery", 0)
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 8


def test_a_rider_booking_whose_commit_was_lost_books_the_same_rider_when_retried(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    _, order = _packed_delivery(client, chain, providers, 1)

    def book() -> str | None:
        return courier.dispatch_courier(
            session,
            uuid.UUID(order["id"]),
            courier=providers.courier("simulated"),
            callback_url="http://testserver/api/v1/couriers/callbacks/simulated",
        ).courier_ref

    booked = book()
    session.rollback()  # the platform booked a rider; the commit that would record it failed
    assert book() == booked  # the platform answered its first booking: one rider, not two
    session.commit()
    [dispatch] = session.scalars(
        select(CourierDispatch).where(CourierDispatch.order_id == uuid.UUID(order["id"]))
    ).all()
    assert (dispatch.courier_ref, dispatch.status) == (booked, DispatchStatus.REQUESTED)
