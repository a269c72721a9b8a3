"""Till sales, online and uploaded later by an offline terminal: exactly once, gapless receipts,
stock taken at once (even below zero), and a status per sale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.orders.conftest import Chain, new_id, ok
from tests.orders.returning import return_line
from zhongtai.core.auth.roles import Channel
from zhongtai.inventory.verify import verify_stock
from zhongtai.orders.kinds import SalesChannel
from zhongtai.orders.models import Order, Payment


def _sale(chain: Chain, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "client_sale_id": new_id(),
        "lines": [{"sku_id": str(chain.skus[0].id), "quantity": quantity}],
        "tenders": [{"type": "cash", "amount": 1000 * quantity}],
        **extra,
    }


def _pos_orders(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Order).where(Order.channel == SalesChannel.POS)
        )
        or 0
    )


def test_a_cash_sale_gets_change_a_receipt_number_and_takes_stock_at_once(
    client: TestClient, chain: Chain
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = _sale(chain, 2, tenders=[{"type": "cash", "amount": 5000}])
    done = ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 201)
    assert done["status"] == "recorded"
    assert done["total"] == 2000 and done["change"] == 3000
    assert done["receipt_number"].startswith(f"{chain.store.code}-T")
    assert done["receipt_number"].endswith("-000001")
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 8
    order = ok(client.get(f"/api/v1/orders/{done['order_id']}", headers=till))
    assert order["status"] == "completed" and order["fulfillment_type"] == "in_store"
    payments = ok(client.get(f"/api/v1/orders/{done['order_id']}/payments", headers=till))
    assert [(p["tender"], p["amount"], p["tendered"]) for p in payments] == [("cash", 2000, 5000)]


def test_the_same_sale_sent_again_is_a_duplicate_and_changes_nothing(
    client: TestClient, chain: Chain, session: Session
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = _sale(chain)
    first = ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 201)
    again = ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 200)
    assert again["status"] == "duplicate"
    assert again["receipt_number"] == first["receipt_number"]
    assert _pos_orders(session) == 1
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 9


def test_tenders_that_do_not_pay_the_sale_get_422_naming_the_tender_and_record_nothing(
    client: TestClient, chain: Chain, session: Session
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = _sale(chain, tenders=[{"type": "bank_card", "amount": 1500}])
    answer = client.post("/api/v1/pos/sales", json=sale, headers=till)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "tenders.0.amount"
    assert _pos_orders(session) == 0
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 10


def test_an_offline_batch_replayed_twice_records_each_sale_once_with_gapless_receipts(
    client: TestClient, chain: Chain, session: Session
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    sales = [
        _sale(chain, occurred_at=(yesterday + timedelta(minutes=i)).isoformat()) for i in range(6)
    ]
    first = ok(client.post("/api/v1/pos/sales/batch", json={"sales": sales}, headers=till))
    assert [r["status"] for r in first["results"]] == ["recorded"] * 6
    numbers = [r["receipt_number"] for r in first["results"]]
    assert [n.rsplit("-", 1)[1] for n in numbers] == [f"{i:06d}" for i in range(1, 7)]
    second = ok(client.post("/api/v1/pos/sales/batch", json={"sales": sales}, headers=till))
    assert [r["status"] for r in second["results"]] == ["duplicate"] * 6
    assert [r["receipt_number"] for r in second["results"]] == numbers
    assert _pos_orders(session) == 6
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 4
    assert verify_stock(session) == []


def test_a_batch_cut_halfway_and_resent_whole_records_the_rest_once(
    client: TestClient, chain: Chain, session: Session
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sales = [_sale(chain) for _ in range(4)]
    ok(client.post("/api/v1/pos/sales/batch", json={"sales": sales[:2]}, headers=till))
    whole = ok(client.post("/api/v1/pos/sales/batch", json={"sales": sales}, headers=till))
    assert [r["status"] for r in whole["results"]] == ["duplicate"] * 2 + ["recorded"] * 2
    assert _pos_orders(session) == 4


def test_two_terminals_interleaved_number_their_own_receipts(
    client: TestClient, chain: Chain
) -> None:
    tills = [chain.factory.api_key_headers(Channel.POS, store=chain.store) for _ in range(2)]
    numbers: dict[int, list[str]] = {0: [], 1: []}
    for i in range(6):
        done = ok(client.post("/api/v1/pos/sales", json=_sale(chain), headers=tills[i % 2]), 201)
        numbers[i % 2].append(done["receipt_number"])
    for mine in numbers.values():
        assert [n.rsplit("-", 1)[1] for n in mine] == ["000001", "000002", "000003"]
    assert {n.split("-")[1] for n in numbers[0]} != {n.split("-")[1] for n in numbers[1]}


def test_a_bad_sale_in_a_batch_is_rejected_with_its_problem_and_the_rest_stand(
    client: TestClient, chain: Chain, session: Session
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    good, bad = _sale(chain), _sale(chain, tenders=[{"type": "wechat_pay", "amount": 99999}])
    answer = ok(client.post("/api/v1/pos/sales/batch", json={"sales": [good, bad]}, headers=till))
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["recorded", "rejected"]
    assert answer["results"][1]["problem"]["status"] == 422
    assert _pos_orders(session) == 1
    assert session.scalar(select(func.count()).select_from(Payment)) == 1


def test_selling_more_than_the_books_show_is_recorded_and_flagged_for_the_manager(
    client: TestClient, chain: Chain
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    done = ok(client.post("/api/v1/pos/sales", json=_sale(chain, 12), headers=till), 201)
    assert done["status"] == "recorded"
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == -2
    listed = ok(
        client.get(
            "/api/v1/inventory/discrepancies",
            params={"location_id": str(chain.store.id)},
            headers=chain.clerk,
        )
    )
    assert len(listed["items"]) == 1


def test_a_till_sale_returned_the_next_day_refunds_cash_and_restocks(
    client: TestClient, chain: Chain
) -> None:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    done = ok(client.post("/api/v1/pos/sales", json=_sale(chain, 2), headers=till), 201)
    order = ok(client.get(f"/api/v1/orders/{done['order_id']}", headers=till))
    returned = return_line(
        client, order, till, store_id=chain.store.id, quantity=2, condition="damaged"
    )
    assert returned["refund_total"] == 2000
    assert [(r["tender"], r["amount"]) for r in returned["refunds"]] == [("cash", 2000)]
    # Damaged goods come back and are written off: on-hand stays where the sale left it.
    assert chain.stock.balance(chain.store, chain.skus[0]).on_hand == 8
    final = ok(client.get(f"/api/v1/orders/{order['id']}", headers=till))
    assert final["status"] == "returned" and final["refunded_amount"] == 2000
