"""Commission at its edges: who is credited when the customer meets a guide only after she
ordered, what a per-item rule pays for a line that was short-picked or substituted, and a
return's reversal delivered twice."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide, GuideAtWork, relay
from tests.guides.test_binding_and_commission import (  # noqa: F401 (fixture)
    GuideOnCommission,
    _entries,
    on_commission,
)
from tests.members.conftest import MakeMember
from tests.orders.conftest import NEARBY, Chain, deliver_parcel, ok, pay_by_wallet, place, quote
from tests.orders.returning import return_line
from zhongtai.core.db import Database
from zhongtai.core.outbox import OutboxEvent
from zhongtai.guides import binding, commission
from zhongtai.guides.commission_rules import CommissionBasis
from zhongtai.guides.handlers import reverse_returned
from zhongtai.guides.models import LineAttribution
from zhongtai.integrations.handlers import PublishedEvent
from zhongtai.integrations.providers import Providers


def _paid_parcel_of(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    member_id: uuid.UUID,
    quantity: int,
    *,
    guide: GuideAtWork | None = None,
) -> Any:
    """The member's parcel of ``quantity`` units of the chain's first SKU at 10.00, placed in
    the app (by ``guide`` for her, if given; similar substitutes allowed) and paid."""
    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "ship",
            "address": NEARBY,
            "member_id": str(member_id),
            "lines": chain.basket(quantity),
        },
    )
    extra = {"guide_id": str(guide.id)} if guide else {}
    order = place(client, chain.app, q["id"], substitution="similar", **extra)
    pay_by_wallet(client, providers, chain.app, order["id"])
    return order


def test_a_share_link_opened_after_the_order_credits_nobody_with_it(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    test_db: Database,
    session: Session,
) -> None:
    guide = enroll_guide(chain.store)
    commission.create_rule(session, name="All", basis=CommissionBasis.PERCENT, rate_bp=1000)
    member = make_member()
    session.commit()
    order = _paid_parcel_of(client, chain, providers, member.id, 2)
    # Only while the parcel is on its way does she open the guide's link: she is bound now,
    # but she had no guide, and had opened no link, when she ordered.
    shared = ok(client.post("/api/v1/guides/me/share-links", json={}, headers=guide.headers), 201)
    ok(
        client.post(
            "/api/v1/share-links/open",
            json={"token": shared["token"], "member_id": str(member.id), "channel": "app"},
            headers=chain.app,
        )
    )
    current = binding.current_binding(session, member.id)
    assert current is not None and current.guide_id == guide.id

    deliver_parcel(client, chain, order["id"])
    relay(test_db)

    credited = ok(client.get(f"/api/v1/orders/{order['id']}/guide-attribution", headers=chain.hq))
    assert [c["guide_id"] for c in credited] == [None]
    assert _entries(session, guide) == []


@pytest.mark.parametrize(
    ("substitutes", "commission_fen"),
    [
        # 1 of 3 found, 2 refunded at the pack: she sold one item.
        (0, 150),
        # 1 of 3 found, 2 replaced by a similar SKU the customer keeps: three items sold.
        (2, 450),
    ],
)
def test_a_per_item_rule_pays_for_the_items_handed_over_not_those_ordered(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    enroll_guide: EnrollGuide,
    make_member: MakeMember,
    test_db: Database,
    session: Session,
    substitutes: int,
    commission_fen: int,
) -> None:
    guide = enroll_guide(chain.store)
    commission.create_rule(
        session, name="Per item", basis=CommissionBasis.PER_ITEM, amount_per_item=150
    )
    member = make_member()
    session.commit()
    order = _paid_parcel_of(client, chain, providers, member.id, 3, guide=guide)
    pick: dict[str, Any] = {"line_id": order["lines"][0]["id"], "picked": 1}
    if substitutes:
        similar = chain.similar_sku(chain.skus[0], price=800)
        pick["substitute"] = {"sku_id": str(similar.id), "quantity": substitutes}

    deliver_parcel(client, chain, order["id"], {"picks": [pick]})
    relay(test_db)

    assert _entries(session, guide) == [("earned", commission_fen, "pending")]


def _redeliver_returns(session: Session, order_id: str) -> None:
    """Hand every ``order.returned`` event of the order to the reversal once more, as a
    redelivery past the relay's bookkeeping would (a renamed consumer, a restored backup)."""
    events = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.type == "order.returned", OutboxEvent.aggregate_id == order_id
        )
    )
    for event in events:
        reverse_returned(PublishedEvent.of(event), session)
    session.commit()


def test_a_redelivered_return_takes_nothing_back_twice_and_later_returns_still_sum_to_the_whole(
    client: TestClient,
    chain: Chain,
    on_commission: GuideOnCommission,  # noqa: F811 (fixture)
    test_db: Database,
    session: Session,
) -> None:
    guide = on_commission.guide
    order = on_commission.sells(3)
    return_line(client, order, order["till"], store_id=chain.store.id)
    relay(test_db)
    _redeliver_returns(session, order["id"])

    [attribution] = session.scalars(
        select(LineAttribution).where(LineAttribution.order_id == uuid.UUID(order["id"]))
    )
    session.refresh(attribution)
    assert attribution.refunded_amount == 1000
    assert _entries(session, guide) == [("earned", 300, "pending"), ("reversed", -100, "pending")]

    # The other two units come back: all the commission is taken back, never more.
    return_line(client, order, order["till"], store_id=chain.store.id, quantity=2)
    relay(test_db)
    _redeliver_returns(session, order["id"])
    entries = _entries(session, guide)
    assert sorted(amount for _, amount, _ in entries) == [-200, -100, 300]
