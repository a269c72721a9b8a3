"""Coupons of an order that comes back after its member was erased. The order was cancelled or
returned, then she was erased before the relay handled it: a coupon the order used is not given
back to a person who no longer exists. It stays used, as erasure leaves her coupons as they
are and makes none for her, and the audit log records it as forfeited against the order
(``coupons.forfeited``), as ``points.forfeited`` records points that had nowhere to go."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok, pay_by_wallet, place, quote, store_step
from zhongtai.core.audit import AuditEntry
from zhongtai.core.db import Database
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty import coupons
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import Coupon, CouponAction, CouponStatus, CouponUse
from zhongtai.loyalty.verify import verify
from zhongtai.members import service as members
from zhongtai.members.models import Member


def _relay(test_db: Database) -> None:
    """Deliver the committed events to the in-process handlers (as `serve` does)."""
    relay = Relay(test_db.writer, holder="erased-member-coupons-test")
    while asyncio.run(relay.run_once()):
        pass


def _coupon(session: Session, member: Member) -> Coupon:
    template = coupons.create_template(
        session,
        code=f"BACK-{uuid.uuid4().hex[:8]}",
        name="减5元",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 500),
        valid_days=9,
    )
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()
    return coupon


def _order(client: TestClient, chain: Chain, member: Member, coupon: Coupon) -> Any:
    """A pickup of two units for the member, 5.00 off with her coupon; placed, not paid."""
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(2),
            "member_id": str(member.id),
            "coupon_ids": [str(coupon.id)],
        },
    )
    assert q["offers"]["coupons"] == [{"coupon_id": str(coupon.id), "amount": 500}]
    return place(client, chain.app, q["id"])


def _cancel(client: TestClient, chain: Chain, order: Any) -> None:
    cancelled = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel", json={"reason": "changed"}, headers=chain.app
        )
    )
    assert cancelled["status"] == "cancelled"


def _erase(session: Session, member: Member) -> None:
    members.erase_member(session, member.id)
    session.commit()


def _status(session: Session, coupon: Coupon) -> CouponStatus:
    now = session.get(Coupon, coupon.id, populate_existing=True)
    assert now is not None
    return now.status


def _history(session: Session, coupon: Coupon) -> list[CouponAction]:
    return list(
        session.scalars(
            select(CouponUse.action).where(CouponUse.coupon_id == coupon.id).order_by(CouponUse.id)
        )
    )


def _forfeits(session: Session, order: Any) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "coupons.forfeited", AuditEntry.subject_id == order["id"])
        .order_by(AuditEntry.id)
    )
    return [row.after or {} for row in rows]


@pytest.mark.parametrize("erased", [True, False], ids=["erased", "not erased"])
def test_a_coupon_used_by_an_order_cancelled_before_her_erasure_is_not_given_back_once_erased(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    test_db: Database,
    make_member: MakeMember,
    erased: bool,
) -> None:
    member = make_member()
    coupon = _coupon(session, member)
    order = _order(client, chain, member, coupon)
    pay_by_wallet(client, providers, chain.app, order["id"])
    assert _status(session, coupon) is CouponStatus.REDEEMED
    _cancel(client, chain, order)
    if erased:  # her order is no longer under way: nothing stops the erasure
        _erase(session, member)

    _relay(test_db)

    if erased:
        assert _status(session, coupon) is CouponStatus.REDEEMED
        assert _history(session, coupon)[-1] is CouponAction.REDEEM
        [forfeit] = _forfeits(session, order)
        assert forfeit == {
            "member_id": str(member.id),
            "coupon_ids": [str(coupon.id)],
            "on": "cancelled",
            "reason": "member-erased",
        }
    else:
        assert _status(session, coupon) is CouponStatus.AVAILABLE
        assert _history(session, coupon)[-1] is CouponAction.RESTORE
        assert _forfeits(session, order) == []


def test_a_coupon_an_order_returned_in_full_after_her_erasure_used_is_not_given_back(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    test_db: Database,
    make_member: MakeMember,
) -> None:
    member = make_member()
    coupon = _coupon(session, member)
    order = _order(client, chain, member, coupon)
    pay_by_wallet(client, providers, chain.app, order["id"])
    for step in ("accept", "start-picking", "pack", "ready"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    code = ok(client.get(f"/api/v1/orders/{order['id']}/tracking", headers=chain.app))["pickup"]
    handed = ok(
        client.post(
            "/api/v1/fulfillment/pickups",
            json={"order": order["number"], "code": code["code"]},
            headers=chain.clerk,
        )
    )
    assert handed["status"] == "completed"
    _relay(test_db)  # she earns points on what she paid
    _erase(session, member)

    returned = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/returns",
            json={
                "reference": new_id(),
                "store_id": str(chain.store.id),
                "lines": [{"line_id": order["lines"][0]["id"], "quantity": 2}],
            },
            headers=chain.clerk,
        ),
        201,
    )
    assert returned["refund_total"] == 1500
    _relay(test_db)

    assert _status(session, coupon) is CouponStatus.REDEEMED
    [forfeit] = _forfeits(session, order)
    assert (forfeit["coupon_ids"], forfeit["on"], forfeit["reason"]) == (
        [str(coupon.id)],
        "returned",
        "member-erased",
    )
    assert verify(session).clean  # her points earned on it were taken back, the books add up


def test_a_coupon_her_checkout_only_held_is_let_go_like_her_other_unused_coupons(
    client: TestClient,
    chain: Chain,
    session: Session,
    test_db: Database,
    make_member: MakeMember,
) -> None:
    """Never used, nothing to give back: the cancelled checkout's hold ends, and the coupon is
    as her erasure left her other coupons. Nothing is forfeited."""
    member = make_member()
    coupon = _coupon(session, member)
    order = _order(client, chain, member, coupon)
    assert _status(session, coupon) is CouponStatus.LOCKED
    _cancel(client, chain, order)
    _erase(session, member)

    _relay(test_db)

    assert _status(session, coupon) is CouponStatus.AVAILABLE
    assert _history(session, coupon)[-1] is CouponAction.RELEASE
    assert _forfeits(session, order) == []
