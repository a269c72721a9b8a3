"""The store's work on an order through the API: picks, substitutes, short picks, packing
retries, who may do it, and the SLA clock over it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.orders.conftest import Chain, ok, paid_pickup, quote, store_step
from tests.orders.conftest import chain as chain  # the order tests' fixtures
from tests.orders.conftest import stock as stock
from zhongtai.catalog.models import SaleUnit, Sku
from zhongtai.core.auth.roles import Role
from zhongtai.core.clock import utcnow
from zhongtai.core.outbox import OutboxEvent
from zhongtai.fulfillment.models import FulfillmentTask, TaskStatus
from zhongtai.fulfillment.sla import flag_sla_breaches
from zhongtai.integrations.providers import Providers
from zhongtai.inventory.verify import verify_stock

PACKED_OUT = "/api/v1/fulfillment/orders/{}/{}"


def _picking(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    *quantities: int,
    substitution: str = "similar",
) -> dict[str, Any]:
    """A paid pickup order of ``quantities`` of the chain's SKUs, being picked."""
    order = paid_pickup(client, chain, providers, *quantities, substitution=substitution)
    store_step(client, chain.clerk, order["id"], "accept")
    store_step(client, chain.clerk, order["id"], "start-picking")
    return order


def _pack(client: TestClient, chain: Chain, order: dict[str, Any], body: Any) -> Any:
    return client.post(PACKED_OUT.format(order["id"], "pack"), json=body, headers=chain.clerk)


def _order(client: TestClient, chain: Chain, order: dict[str, Any]) -> Any:
    return ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))


def _stock(chain: Chain, sku: Sku) -> tuple[int, int]:
    balance = chain.stock.balance(chain.store, sku)
    return (balance.on_hand, balance.reserved) if balance else (0, 0)


def _substitute(line_id: str, picked: int, sku: Sku, quantity: int) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "picked": picked,
        "substitute": {"sku_id": str(sku.id), "quantity": quantity},
    }


def _nothing_moved(client: TestClient, chain: Chain, order: dict[str, Any], held: int) -> None:
    after = _order(client, chain, order)
    assert (after["status"], after["refunded_amount"]) == ("picking", 0)
    assert [x["picked_quantity"] for x in after["lines"]] == [None] * len(after["lines"])
    assert _stock(chain, chain.skus[0]) == (10, held)


# --- picks ------------------------------------------------------------------------------------


def test_a_pick_naming_a_line_twice_is_refused_and_nothing_moves(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 3)
    line_id = order["lines"][0]["id"]
    answer = _pack(
        client,
        chain,
        order,
        {"picks": [{"line_id": line_id, "picked": 3}, {"line_id": line_id, "picked": 0}]},
    )
    assert answer.status_code == 422, answer.text
    assert "picks[1]" in answer.text
    _nothing_moved(client, chain, order, held=3)


def test_a_bad_pick_is_named_by_its_place_in_the_request_not_the_order(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 1, 2)
    second = order["lines"][1]["id"]
    answer = _pack(client, chain, order, {"picks": [{"line_id": second, "picked": 5}]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "picks[0]"


def test_a_substitute_is_refused_when_the_customer_wanted_none_and_nothing_moves(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2, substitution="none")
    similar = chain.similar_sku(chain.skus[0])
    pick = _substitute(order["lines"][0]["id"], 1, similar, 1)
    answer = _pack(client, chain, order, {"picks": [pick]})
    assert answer.status_code == 422, answer.text
    assert "no substitutes" in answer.text
    _nothing_moved(client, chain, order, held=2)
    assert _stock(chain, similar) == (10, 0)


def test_a_substitute_from_another_category_is_not_similar_and_is_refused(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2)
    other = chain.skus[1]  # the chain's SKUs are each of their own category
    pick = _substitute(order["lines"][0]["id"], 1, other, 1)
    answer = _pack(client, chain, order, {"picks": [pick]})
    assert answer.status_code == 422, answer.text
    assert "similar" in answer.text
    _nothing_moved(client, chain, order, held=2)
    assert _stock(chain, other) == (10, 0)


def test_goods_sold_by_weight_do_not_substitute_goods_sold_by_the_piece(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    """One unit for one unit: grams of fish are no substitute for a piece of anything."""
    order = _picking(client, chain, providers, 2)
    weighed = chain.similar_sku(chain.skus[0], on_hand=5000, unit=SaleUnit.GRAM)
    pick = _substitute(order["lines"][0]["id"], 1, weighed, 1)
    answer = _pack(client, chain, order, {"picks": [pick]})
    assert answer.status_code == 422, answer.text
    _nothing_moved(client, chain, order, held=2)
    assert _stock(chain, weighed) == (5000, 0)


def test_a_substitute_sku_that_does_not_exist_is_refused_and_nothing_moves(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2)
    pick = {
        "line_id": order["lines"][0]["id"],
        "picked": 1,
        "substitute": {"sku_id": str(chain.factory.new_id()), "quantity": 1},
    }
    answer = _pack(client, chain, order, {"picks": [pick]})
    assert answer.status_code == 422, answer.text
    _nothing_moved(client, chain, order, held=2)


def test_a_substitute_the_store_has_not_got_is_refused_and_stock_never_goes_negative(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2)
    similar = chain.similar_sku(chain.skus[0], on_hand=0)
    pick = _substitute(order["lines"][0]["id"], 1, similar, 1)
    answer = _pack(client, chain, order, {"picks": [pick]})
    assert answer.status_code == 409, answer.text
    _nothing_moved(client, chain, order, held=2)
    assert _stock(chain, similar) == (0, 0)


def test_a_substitute_held_for_another_customer_is_not_taken_from_them(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2)
    similar = chain.similar_sku(chain.skus[0], on_hand=1)
    quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": [{"sku_id": str(similar.id), "quantity": 1}],
        },
    )
    assert _stock(chain, similar) == (1, 1)
    pick = _substitute(order["lines"][0]["id"], 1, similar, 1)
    answer = _pack(client, chain, order, {"picks": [pick]})
    assert answer.status_code == 409, answer.text
    _nothing_moved(client, chain, order, held=2)
    assert _stock(chain, similar) == (1, 1)


def test_a_similar_substitute_is_never_charged_above_the_original_and_leaves_the_shelf(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2)
    similar = chain.similar_sku(chain.skus[0], price=1500)
    pick = _substitute(order["lines"][0]["id"], 1, similar, 1)
    packed = ok(_pack(client, chain, order, {"picks": [pick]}))
    line = packed["lines"][0]
    assert (line["picked_quantity"], line["substitute_quantity"]) == (1, 1)
    assert line["short_refund"] == packed["refunded_amount"] == 0
    assert _stock(chain, chain.skus[0]) == (10, 1)
    assert _stock(chain, similar) == (9, 0)


def test_short_picking_every_line_is_refused_so_no_empty_parcel_goes_out(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2, 1)
    picks = [{"line_id": x["id"], "picked": 0} for x in order["lines"]]
    answer = _pack(client, chain, order, {"picks": picks})
    assert answer.status_code == 409, answer.text
    assert "Cancel the order" in answer.json()["detail"]
    _nothing_moved(client, chain, order, held=2)


# --- packing twice ----------------------------------------------------------------------------


def test_packing_again_with_the_same_picks_refunds_once(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 3)
    body = {"picks": [{"line_id": order["lines"][0]["id"], "picked": 1}], "packages": 2}
    first = ok(_pack(client, chain, order, body))
    again = ok(_pack(client, chain, order, body))
    assert again["refunded_amount"] == first["refunded_amount"] == 2000
    refunds = ok(client.get(f"/api/v1/orders/{order['id']}/refunds", headers=chain.app))
    assert len(refunds) == 1
    assert _stock(chain, chain.skus[0]) == (10, 1)


def test_packing_again_with_other_picks_is_a_409_and_changes_nothing(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 3)
    line_id = order["lines"][0]["id"]
    ok(_pack(client, chain, order, {"picks": [{"line_id": line_id, "picked": 1}]}))
    for other in ({"picks": [{"line_id": line_id, "picked": 2}]}, {"picks": []}):
        answer = _pack(client, chain, order, other)
        assert answer.status_code == 409, answer.text
    after = _order(client, chain, order)
    assert (after["lines"][0]["picked_quantity"], after["refunded_amount"]) == (1, 2000)
    assert _stock(chain, chain.skus[0]) == (10, 1)


# --- who may work on the order ----------------------------------------------------------------


def test_a_clerk_of_another_store_can_do_no_step_of_the_order(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2)
    elsewhere = chain.factory.staff_headers(Role.STORE_STAFF, [chain.factory.location()])
    parcel = {"carrier": "SF Express", "tracking_number": "SF1"}
    for step in ("accept", "start-picking", "pack", "ready", "ship", "delivered"):
        body = parcel if step == "ship" else {}
        answer = client.post(PACKED_OUT.format(order["id"], step), json=body, headers=elsewhere)
        assert answer.status_code == 403, (step, answer.text)
    pick_list = client.get(PACKED_OUT.format(order["id"], "pick-list"), headers=elsewhere)
    assert pick_list.status_code == 403
    _nothing_moved(client, chain, order, held=2)


def test_a_pickup_order_cannot_be_completed_by_the_parcel_delivered_step(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    """Only the customer's code hands a pickup order over (and ships its stock)."""
    order = _picking(client, chain, providers, 2)
    ok(_pack(client, chain, order, {}))
    store_step(client, chain.clerk, order["id"], "ready")
    answer = client.post(PACKED_OUT.format(order["id"], "delivered"), headers=chain.clerk)
    assert answer.status_code == 409, answer.text
    assert _order(client, chain, order)["status"] == "ready_for_pickup"
    assert _stock(chain, chain.skus[0]) == (10, 2)


# --- the SLA clock ----------------------------------------------------------------------------


def _queue(client: TestClient, chain: Chain) -> Any:
    return ok(client.get(f"/api/v1/fulfillment/stores/{chain.store.id}/queue", headers=chain.clerk))


def _breaches(session: Session) -> list[OutboxEvent]:
    return list(
        session.scalars(select(OutboxEvent).where(OutboxEvent.type == "fulfillment.sla_breached"))
    )


def test_a_late_task_is_reported_once_and_not_before_its_deadline(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _picking(client, chain, providers, 1)
    due = _order(client, chain, order)["promised_ready_at"]
    [item] = [x for x in _queue(client, chain) if x["order"]["id"] == order["id"]]
    assert item["due_at"] == due and not item["sla_breached"]
    at = datetime.fromisoformat(item["due_at"])
    assert flag_sla_breaches(session, now=at) == 0
    assert flag_sla_breaches(session, now=at + timedelta(seconds=1)) == 1
    assert flag_sla_breaches(session, now=at + timedelta(hours=1)) == 0
    session.commit()
    [event] = _breaches(session)
    assert event.store_id == chain.store.id
    assert event.payload["order_id"] == order["id"]
    queue = _queue(client, chain)
    assert [x["sla_breached"] for x in queue if x["order"]["id"] == order["id"]] == [True]


def test_no_sla_breach_is_reported_for_an_order_cancelled_before_it_was_packed(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _picking(client, chain, providers, 1)
    ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel",
            json={"reason": "customer changed their mind"},
            headers=chain.clerk,
        )
    )
    assert flag_sla_breaches(session, now=utcnow() + timedelta(days=1)) == 0
    session.commit()
    assert _breaches(session) == []


def test_no_sla_breach_is_reported_for_a_packed_order(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _picking(client, chain, providers, 1)
    ok(_pack(client, chain, order, {}))
    assert flag_sla_breaches(session, now=utcnow() + timedelta(days=1)) == 0


def test_cancelling_a_packed_order_puts_its_substitute_back_on_the_shelf_and_ends_its_task(
    client: TestClient, chain: Chain, providers: Providers, session: Session
) -> None:
    order = _picking(client, chain, providers, 2)
    similar = chain.similar_sku(chain.skus[0])
    pick = _substitute(order["lines"][0]["id"], 1, similar, 1)
    ok(_pack(client, chain, order, {"picks": [pick]}))
    assert _stock(chain, similar) == (9, 0)  # in the parcel, still in the store

    ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel",
            json={"reason": "customer changed their mind"},
            headers=chain.clerk,
        )
    )

    assert _stock(chain, similar) == (10, 0)
    assert _stock(chain, chain.skus[0]) == (10, 0)
    assert verify_stock(session) == []
    [task] = session.scalars(
        select(FulfillmentTask).where(FulfillmentTask.order_id == uuid.UUID(order["id"])),
        execution_options={"populate_existing": True},
    ).all()
    assert task.status is TaskStatus.CANCELLED


def test_a_substitute_is_charged_at_the_catalog_price_whatever_the_packing_table_types(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2)
    similar = chain.similar_sku(chain.skus[0], price=800)
    pick = _substitute(order["lines"][0]["id"], 1, similar, 1)
    pick["substitute"]["unit_price"] = 0  # what an older till client still sends: not a price
    packed = ok(_pack(client, chain, order, {"picks": [pick]}))
    # The substitute costs 8.00 where the original cost 10.00: 2.00 back, not all of it.
    assert packed["lines"][0]["short_refund"] == packed["refunded_amount"] == 200


def test_packing_an_order_not_being_picked_is_a_409_whatever_its_picks(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = paid_pickup(client, chain, providers, 2)
    store_step(client, chain.clerk, order["id"], "accept")  # accepted, not picking yet
    picks = {"picks": [{"line_id": order["lines"][0]["id"], "picked": 99}]}
    answer = _pack(client, chain, order, picks)
    assert answer.status_code == 409, answer.text
    assert _order(client, chain, order)["status"] == "accepted"


def test_shipping_an_order_that_is_not_a_parcel_is_a_409_naming_what_comes_next(
    client: TestClient, chain: Chain, providers: Providers
) -> None:
    order = _picking(client, chain, providers, 2)
    ok(_pack(client, chain, order, {}))
    parcel = {"carrier": "SF Express", "tracking_number": "SF1"}
    answer = client.post(PACKED_OUT.format(order["id"], "ship"), json=parcel, headers=chain.clerk)
    assert answer.status_code == 409, answer.text
    assert "pickup orders never pass through shipped" in answer.json()["detail"]
    assert _order(client, chain, order)["status"] == "packed"
