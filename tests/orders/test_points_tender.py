"""One member everywhere: points earned at the till pay part of an app order, once, and come
back when the order is cancelled."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok, pay_by_wallet, place, quote
from zhongtai.core.auth.roles import Channel
from zhongtai.core.db import Database
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty.verify import verify


def _balance(client: TestClient, headers: dict[str, str], member_id: str) -> int:
    return int(ok(client.get(f"/api/v1/members/{member_id}/points", headers=headers))["balance"])


def test_points_earned_in_a_till_sale_pay_part_of_an_app_order_and_come_back_on_cancel(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    test_db: Database,
    make_member: MakeMember,
) -> None:
    member = make_member()
    session.commit()
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    ok(
        client.post(
            "/api/v1/pos/sales",
            json={
                "client_sale_id": new_id(),
                "member_id": str(member.id),
                "lines": [{"sku_id": str(chain.skus[2].id), "quantity": 10}],
                "tenders": [{"type": "cash", "amount": 10000}],
            },
            headers=till,
        ),
        201,
    )
    relay = Relay(test_db.writer, holder="points-tender-test")
    asyncio.run(relay.run_once())
    earned = _balance(client, chain.app, str(member.id))
    assert earned == 100  # 100.00 yuan at one point a yuan

    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(2),
            "member_id": str(member.id),
        },
    )
    order = place(client, chain.app, q["id"])
    too_many = client.post(
        f"/api/v1/orders/{order['id']}/payments",
        json={"tender": "points", "points": 1100},
        headers=chain.app,
    )
    assert too_many.status_code == 422  # 50% of 20.00 is 10.00 = 1,000 points, and she has 100
    by_points = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/payments",
            json={"tender": "points", "points": 100},
            headers=chain.app,
        ),
        201,
    )
    assert (by_points["tender"], by_points["amount"], by_points["status"]) == (
        "points",
        100,
        "captured",
    )
    assert _balance(client, chain.app, str(member.id)) == 0
    twice = client.post(
        f"/api/v1/orders/{order['id']}/payments",
        json={"tender": "points", "points": 100},
        headers=chain.app,
    )
    assert twice.status_code == 409
    wallet = pay_by_wallet(client, providers, chain.app, order["id"])
    assert wallet["amount"] == 1900
    assert ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))["status"] == "paid"

    cancelled = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel", json={"reason": "changed"}, headers=chain.app
        )
    )
    assert cancelled["refunded_amount"] == 2000
    refunds = ok(client.get(f"/api/v1/orders/{order['id']}/refunds", headers=chain.app))
    assert sorted((r["tender"], r["amount"]) for r in refunds) == [
        ("points", 100),
        ("wechat_pay", 1900),
    ]
    assert _balance(client, chain.app, str(member.id)) == 100
    assert verify(session).clean
