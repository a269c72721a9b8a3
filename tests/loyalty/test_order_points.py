"""Points from orders: a completed order earns its member points once, a return takes them back
in proportion, and an order returned in full gives its coupons back."""

from __future__ import annotations

import asyncio
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok
from tests.orders.returning import return_line
from zhongtai.core.auth.roles import Channel
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.handlers import HANDLERS, PublishedEvent, handle
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty import coupons, service
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import CouponStatus, EntryKind, PointsEntry, SourceType


def _relay(test_db: Database) -> None:
    asyncio.run(Relay(test_db.writer, holder="loyalty-test").run_once())


def _sale(chain: Chain, member_id: uuid.UUID, quantity: int, tenders: list[dict]) -> dict:  # type: ignore[type-arg]
    return {
        "client_sale_id": new_id(),
        "member_id": str(member_id),
        "lines": [{"sku_id": str(chain.skus[0].id), "quantity": quantity}],
        "tenders": tenders,
    }


def test_a_till_sale_earns_its_member_points_once_and_a_return_takes_them_back(
    client: TestClient, chain: Chain, make_member: MakeMember, test_db: Database, session: Session
) -> None:
    member = make_member()
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = _sale(chain, member.id, 3, [{"type": "cash", "amount": 3_000}])
    done = ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 201)
    _relay(test_db)
    balance = ok(client.get(f"/api/v1/members/{member.id}/points", headers=till))
    assert balance["balance"] == 30  # 1 point per yuan of ¥30 paid in cash

    # The completion delivered again (a relay crash before marking it published) earns nothing.
    completed = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.type == "order.completed",
            OutboxEvent.aggregate_id == done["order_id"],
        )
    ).one()
    for registration in HANDLERS["order.completed"]:
        handle(session, registration, PublishedEvent.of(completed))
    assert ok(client.get(f"/api/v1/members/{member.id}/points", headers=till))["balance"] == 30

    order = ok(client.get(f"/api/v1/orders/{done['order_id']}", headers=till))
    return_line(client, order, till, store_id=chain.store.id)
    _relay(test_db)
    after = ok(client.get(f"/api/v1/members/{member.id}/points", headers=till))
    assert (after["balance"], after["debt"]) == (20, 0)
    assert service.verify(session).clean


def test_points_and_coupon_tenders_earn_nothing_and_a_full_return_restores_the_coupon(
    client: TestClient, chain: Chain, make_member: MakeMember, test_db: Database, session: Session
) -> None:
    member = make_member()
    template = coupons.create_template(
        session,
        code="POS5",
        name="减5元",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 500),
        valid_days=9,
    )
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = _sale(
        chain,
        member.id,
        2,
        [{"type": "cash", "amount": 1_500}, {"type": "coupon", "amount": 500}],
    )
    done = ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 201)
    # The till redeems the coupon for its sale (the lead wires this into the sale itself).
    ok(
        client.post(
            f"/api/v1/members/{member.id}/coupons/{coupon.id}/redeem",
            json={"source_type": "pos_sale", "source_id": done["order_id"], "discount_fen": 500},
            headers=till,
        ),
        201,
    )
    _relay(test_db)
    assert ok(client.get(f"/api/v1/members/{member.id}/points", headers=till))["balance"] == 15
    order = ok(client.get(f"/api/v1/orders/{done['order_id']}", headers=till))
    return_line(client, order, till, store_id=chain.store.id, quantity=2)
    _relay(test_db)
    assert ok(client.get(f"/api/v1/members/{member.id}/points", headers=till))["balance"] == 0
    session.refresh(coupon)
    assert coupon.status is CouponStatus.AVAILABLE
    reversed_ = session.scalar(
        select(func.count())
        .select_from(PointsEntry)
        .where(PointsEntry.member_id == member.id, PointsEntry.kind == EntryKind.REVERSE)
    )
    assert reversed_ == 1
    earned = session.scalars(
        select(PointsEntry).where(
            PointsEntry.member_id == member.id, PointsEntry.kind == EntryKind.EARN
        )
    ).one()
    assert (earned.source_type, earned.source_id) == (SourceType.ORDER, done["order_id"])


def test_a_cancelled_order_frees_the_coupon_its_checkout_held(
    client: TestClient, chain: Chain, make_member: MakeMember, test_db: Database, session: Session
) -> None:
    member = make_member()
    template = coupons.create_template(
        session,
        code="APP5",
        name="减5元",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 500),
        valid_days=9,
    )
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()
    body = {
        "fulfillment_type": "pickup",
        "store_id": str(chain.store.id),
        "member_id": str(member.id),
        "lines": chain.basket(1),
    }
    q = ok(client.post("/api/v1/checkout/quotes", json=body, headers=chain.app), 201)
    # The checkout holds the coupon for its quote (the lead wires this into the quote itself).
    ok(
        client.post(
            f"/api/v1/members/{member.id}/coupons/{coupon.id}/lock",
            json={"reference": f"quote:{q['id']}"},
            headers=chain.app,
        )
    )
    order = ok(client.post("/api/v1/orders", json={"quote_id": q["id"]}, headers=chain.app), 201)
    ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel",
            json={"reason": "changed my mind"},
            headers=chain.app,
        )
    )
    _relay(test_db)
    session.refresh(coupon)
    assert (coupon.status, coupon.locked_by) == (CouponStatus.AVAILABLE, None)
