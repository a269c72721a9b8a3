"""An order paid partly with points whose member was erased afterwards: its money still goes
back, on cancellation and on return, and the points, which have no account to go back to, are
recorded as forfeited rather than blocking the refund or vanishing without a trace."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import (
    NEARBY,
    Chain,
    deliver_parcel,
    new_id,
    ok,
    pay_by_wallet,
    place,
    quote,
)
from zhongtai.core.audit import AuditEntry
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.core.errors import Conflict
from zhongtai.core.outbox import OutboxEvent
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.models import SourceType
from zhongtai.loyalty.verify import verify
from zhongtai.members import service as members
from zhongtai.members.models import Member

#: What she holds before the order: enough to pay the most points may pay of it.
HELD = 1500
#: Points she pays with: 10.00 yuan at 100 points a yuan.
SPENT = 1000


def _paid_partly_in_points(
    client: TestClient, chain: Chain, providers: Providers, member: Member
) -> Any:
    """A parcel of two units at 10.00 (and the 6.00 delivery fee) for the member: 1,000 of her
    points pay 10.00 of it, WeChat Pay the rest. The order as answered once paid."""
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "ship",
            "address": NEARBY,
            "member_id": str(member.id),
            "lines": chain.basket(2),
        },
    )
    order = place(client, chain.app, q["id"])
    by_points = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/payments",
            json={"tender": "points", "points": SPENT},
            headers=chain.app,
        ),
        201,
    )
    assert (by_points["tender"], by_points["amount"]) == ("points", 1000)
    pay_by_wallet(client, providers, chain.app, order["id"])
    paid = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (paid["status"], paid["paid_amount"]) == ("paid", 2600)
    return paid


@pytest.fixture
def member(session: Session, make_member: MakeMember) -> Member:
    """A member holding ``HELD`` points."""
    member = make_member()
    loyalty.earn_points(session, member.id, loyalty.Source(SourceType.CAMPAIGN, new_id()), HELD)
    session.commit()
    return member


def relay(test_db: Database) -> None:
    """Deliver the committed events to the in-process handlers (as `serve` does)."""
    relay_ = Relay(test_db.writer, holder="erased-member-refunds-test")
    while asyncio.run(relay_.run_once()):
        pass


def _erase(session: Session, member: Member) -> None:
    members.erase_member(session, member.id)
    session.commit()


def _balance(session: Session, member: Member) -> int:
    session.expire_all()
    return loyalty.points_balance(session, member.id, utcnow()).balance


def _refunds(client: TestClient, chain: Chain, order: Any) -> list[tuple[str, int]]:
    rows = ok(client.get(f"/api/v1/orders/{order['id']}/refunds", headers=chain.app))
    return sorted((r["tender"], r["amount"]) for r in rows)


def _forfeits(session: Session, order: Any) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "points.forfeited", AuditEntry.subject_id == order["id"])
        .order_by(AuditEntry.id)
    )
    return [row.after or {} for row in rows]


def _refund_events(session: Session, order: Any) -> list[tuple[str, int, int]]:
    rows = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.type == "payment.refunded", OutboxEvent.aggregate_id == order["id"]
        )
    )
    return sorted(
        (row.payload["tender"], row.payload["amount"], row.payload["points_forfeited"])
        for row in rows
    )


def test_a_member_whose_order_paid_partly_in_points_is_under_way_is_erased_only_once_it_is_done(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    member: Member,
) -> None:
    """Her contact and address are needed while the order is under way, so the erasure waits:
    cancelled first, the order gives her points back to an account still hers."""
    order = _paid_partly_in_points(client, chain, providers, member)
    with pytest.raises(Conflict) as refused:
        members.erase_member(session, member.id)
    session.rollback()
    assert refused.value.extra["open_orders"] == [order["number"]]

    cancelled = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel", json={"reason": "changed"}, headers=chain.app
        )
    )

    assert (cancelled["status"], cancelled["refunded_amount"]) == ("cancelled", 2600)
    assert _refund_events(session, order) == [("points", 1000, 0), ("wechat_pay", 1600, 0)]
    assert _balance(session, member) == HELD
    assert _forfeits(session, order) == []
    _erase(session, member)
    assert verify(session).clean


def test_returning_goods_of_an_order_paid_partly_in_points_of_an_erased_member_refunds_the_money_and_forfeits_the_points(  # noqa: E501
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    test_db: Database,
    member: Member,
) -> None:
    order = _paid_partly_in_points(client, chain, providers, member)
    deliver_parcel(client, chain, order["id"])
    relay(test_db)  # she earns on the money she paid
    _erase(session, member)

    def give_back(line: int) -> Any:
        """One unit of the order's ``line``-th line back at the store."""
        return ok(
            client.post(
                f"/api/v1/orders/{order['id']}/returns",
                json={
                    "reference": new_id(),
                    "store_id": str(chain.store.id),
                    "lines": [{"line_id": order["lines"][line]["id"], "quantity": 1}],
                },
                headers=chain.clerk,
            ),
            201,
        )

    # Money first: the first unit comes back on the wallet alone.
    assert give_back(0)["refund_total"] == 1000
    assert _forfeits(session, order) == []
    # The second unit takes the wallet's last 6.00 and 4.00 of the points tender: forfeited.
    assert give_back(0)["refund_total"] == 1000
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert (after["status"], after["paid_amount"], after["refunded_amount"]) == (
        "returned",
        2600,
        2000,  # the delivery fee stays paid
    )
    assert _refunds(client, chain, order) == [
        ("points", 400),
        ("wechat_pay", 600),
        ("wechat_pay", 1000),
    ]
    [forfeit] = _forfeits(session, order)
    assert (forfeit["points"], forfeit["amount"]) == (400, 400)
    relay(test_db)  # the points she earned on the goods are taken back
    assert verify(session).clean
    assert _balance(session, member) == HELD - SPENT


def test_points_go_back_as_points_to_a_member_who_was_not_erased(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    member: Member,
) -> None:
    order = _paid_partly_in_points(client, chain, providers, member)

    ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel", json={"reason": "changed"}, headers=chain.app
        )
    )

    assert _balance(session, member) == HELD
    assert _forfeits(session, order) == []
    assert verify(session).clean
