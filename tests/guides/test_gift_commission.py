"""Commission when goods that earned a gift (满额赠) come back: the guide's commission is taken
back on what the customer was actually refunded — the lines' refunds less the gift's worth
withheld while she keeps the gift — and the rest is taken back when the gift comes back and
what was withheld is given back. Never more than she earned, never twice."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.guides.conftest import EnrollGuide, GuideAtWork, relay
from tests.guides.test_binding_and_commission import _entries
from tests.guides.test_commission_edges import _redeliver_returns
from tests.members.conftest import MakeMember
from tests.orders.conftest import NEARBY, Chain, deliver_parcel, pay_by_wallet, place, quote
from tests.orders.gifting import GIFT, gift_coupon
from tests.orders.returning import return_lines
from zhongtai.catalog.models import Product, Sku
from zhongtai.core.db import Database
from zhongtai.guides import commission
from zhongtai.guides.commission_rules import CommissionBasis
from zhongtai.guides.models import CommissionEntry, CommissionKind, LineAttribution
from zhongtai.integrations.providers import Providers


def _sold_by_guide_with_gift(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    member: Any,
    guide: GuideAtWork,
    lines: list[dict[str, Any]],
    **gift: Any,
) -> Any:
    """The guide places a parcel of ``lines`` for her customer with a gift coupon (one unit of
    the chain's third SKU, 10.00, from 20.00 unless ``gift`` says otherwise); it is paid by
    wallet and delivered: the completed order."""
    coupon = gift_coupon(session, member, chain.skus[2], **gift)
    body = {
        "fulfillment_type": "ship",
        "address": NEARBY,
        "lines": lines,
        "member_id": str(member.id),
        "coupon_ids": [str(coupon.id)],
    }
    q = quote(client, chain.app, body)
    assert q["offers"]["gifts"], q["offers"]
    order = place(client, chain.app, q["id"], guide_id=str(guide.id))
    pay_by_wallet(client, providers, chain.app, order["id"])
    return deliver_parcel(client, chain, order["id"])


def _reversals(session: Session, guide: GuideAtWork) -> dict[str, int]:
    """The guide's reversal entries: amount by the returned line they are booked on."""
    session.expire_all()
    rows = session.scalars(
        select(CommissionEntry).where(
            CommissionEntry.guide_id == guide.id, CommissionEntry.kind == CommissionKind.REVERSED
        )
    )
    taken: dict[str, int] = {}
    for entry in rows:
        line_id = entry.source_ref.rsplit(":", 1)[1]
        taken[line_id] = taken.get(line_id, 0) + entry.amount
    return taken


def _refunded(session: Session, line_id: str) -> int:
    session.expire_all()
    attribution = session.scalars(
        select(LineAttribution).where(LineAttribution.order_line_id == uuid.UUID(line_id))
    ).one()
    return attribution.refunded_amount


def test_a_return_below_the_gifts_threshold_takes_commission_back_on_the_net_refund_only(
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
    order = _sold_by_guide_with_gift(
        client, chain, providers, session, member, guide, chain.basket(3)
    )
    relay(test_db)
    # 10 % of the 30.00 paid for the goods; the gift (net 0) earns nothing.
    assert _entries(session, guide) == [("earned", 300, "pending")]

    # Two of three back: 20.00 of goods, 10.00 of it withheld for the gift she keeps.
    back = return_lines(client, chain, order, (0, 2))
    assert (back["lines"][0]["refund"], back["refund_total"]) == (2000, 1000)
    relay(test_db)

    # 10 % of the 10.00 actually refunded, not of the line's 20.00.
    line = order["lines"][0]["id"]
    assert _reversals(session, guide) == {line: -100}
    assert _refunded(session, line) == 1000
    [reversal] = [e for e in session.scalars(select(CommissionEntry)) if e.amount == -100]
    assert reversal.details["refund"] == 1000
    assert reversal.details["gift_withheld"] == 1000
    assert "withheld" in reversal.reason

    # Delivered again, the event takes nothing more.
    _redeliver_returns(session, order["id"])
    assert _reversals(session, guide) == {line: -100}


def test_the_gift_returned_later_takes_back_the_commission_on_what_is_given_back(
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
    order = _sold_by_guide_with_gift(
        client, chain, providers, session, member, guide, chain.basket(3)
    )
    line = order["lines"][0]["id"]
    assert return_lines(client, chain, order, (0, 2))["refund_total"] == 1000
    relay(test_db)
    assert _reversals(session, guide) == {line: -100}

    # The gift comes back: the 10.00 withheld is refunded now, and the commission on it goes
    # with it, booked on the line it was withheld from (the gift line itself earned nothing).
    gift_back = return_lines(client, chain, order, (GIFT, 1))
    assert gift_back["refund_total"] == 1000
    relay(test_db)
    assert _reversals(session, guide) == {line: -200}
    assert _refunded(session, line) == 2000
    given = session.scalars(
        select(CommissionEntry).where(
            CommissionEntry.source_ref == f"return:{gift_back['id']}:{line}"
        )
    ).one()
    assert (given.amount, given.details["gift_given_back"]) == (-100, 1000)

    # The last unit: the whole commission is taken back, never more, whatever is redelivered.
    return_lines(client, chain, order, (0, 1))
    relay(test_db)
    _redeliver_returns(session, order["id"])
    assert _reversals(session, guide) == {line: -300}
    assert _refunded(session, line) == 3000
    assert sum(amount for _, amount, _ in _entries(session, guide)) == 0


def test_the_withheld_worth_is_spread_over_the_returned_lines_at_each_lines_rate(
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
    second = session.get(Sku, chain.skus[1].id)
    assert second is not None
    product = session.get(Product, second.product_id)
    assert product is not None
    commission.create_rule(
        session,
        name="Second SKU's category",
        basis=CommissionBasis.PERCENT,
        rate_bp=2000,
        category_id=product.category_id,
    )
    member = make_member()
    session.commit()
    # 2 x 10.00 of each of two SKUs (40.00), a 10.00 gift from 30.00 of them.
    order = _sold_by_guide_with_gift(
        client, chain, providers, session, member, guide, chain.basket(2, 2), threshold=3000
    )
    relay(test_db)
    assert sorted(amount for _, amount, _ in _entries(session, guide)) == [200, 400]

    # One of each back: 20.00 refunded by the lines, 10.00 kept for the gift, the rest
    # refunded: 5.00 of each line's 10.00, at 10 % and 20 %.
    back = return_lines(client, chain, order, (0, 1), (1, 1))
    assert back["refund_total"] == 1000
    relay(test_db)
    first, other = order["lines"][0]["id"], order["lines"][1]["id"]
    assert _reversals(session, guide) == {first: -50, other: -100}

    # The gift back: the withheld 10.00 comes back to the same lines in the same shares.
    return_lines(client, chain, order, (GIFT, 1))
    relay(test_db)
    assert _reversals(session, guide) == {first: -100, other: -200}
    assert (_refunded(session, first), _refunded(session, other)) == (1000, 1000)
