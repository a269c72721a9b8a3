"""Returning what earned a gift (满额赠): when the goods she keeps no longer reach the coupon's
threshold and she keeps the gift, the gift's worth is taken from the refund, explained in the
return's answer; the gift returned with them or before costs nothing, and the gift returned
afterwards gets its worth back. The coupon stays used."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import (
    NEARBY,
    Chain,
    new_id,
    ok,
    pay_by_wallet,
    place,
    quote,
    store_step,
)
from zhongtai.catalog.models import Sku
from zhongtai.core.db import Database
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty import coupons
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.coupons import TemplateRules
from zhongtai.loyalty.models import Coupon, CouponStatus
from zhongtai.loyalty.promotion_rules import Scope

#: The gift's line in the orders below (after the basket's lines).
GIFT = -1


def _gift_coupon(
    session: Session,
    member: Any,
    gift: Sku,
    *,
    units: int = 1,
    threshold: int = 2000,
    only: Sku | None = None,
) -> Any:
    """满X送: ``units`` of ``gift`` free from ``threshold`` fen of the goods (of ``only``)."""
    terms = CouponTerms(CouponKind.GIFT_ITEM, units, threshold_fen=threshold, gift_sku_id=gift.id)
    scope = Scope(sku_ids=frozenset({only.id})) if only is not None else Scope()
    template = coupons.create_template(
        session,
        code=f"GIFT-{new_id()[:8]}",
        name="满额赠",
        terms=terms,
        valid_days=30,
        rules=TemplateRules(scope=scope),
    )
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()
    return coupon


def _delivered(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    member: Any,
    coupon: Any,
    lines: list[dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A parcel of ``lines`` with the gift coupon, paid by wallet and delivered: the quote
    and the completed order."""
    body = {
        "fulfillment_type": "ship",
        "address": NEARBY,
        "lines": lines,
        "member_id": str(member.id),
        "coupon_ids": [str(coupon.id)],
    }
    q = quote(client, chain.app, body)
    order = place(client, chain.app, q["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    for step in ("accept", "start-picking", "pack"):
        store_step(client, chain.clerk, order["id"], step, {} if step == "pack" else None)
    store_step(
        client, chain.clerk, order["id"], "ship", {"carrier": "SF", "tracking_number": new_id()}
    )
    done = store_step(client, chain.clerk, order["id"], "delivered")
    assert done["status"] == "completed"
    return q, done


def _return(
    client: TestClient,
    chain: Chain,
    order: dict[str, Any],
    *back: tuple[int, int],
    reference: str | None = None,
    status: int = 201,
) -> Any:
    """Bring back ``(line index, quantity)`` of ``order`` at the chain's store."""
    lines = [{"line_id": order["lines"][i]["id"], "quantity": q} for i, q in back]
    body = {"reference": reference or new_id(), "store_id": str(chain.store.id), "lines": lines}
    return ok(
        client.post(f"/api/v1/orders/{order['id']}/returns", json=body, headers=chain.clerk),
        status,
    )


def _order(client: TestClient, chain: Chain, order: dict[str, Any]) -> Any:
    return ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))


def _relay(test_db: Database) -> None:
    """Loyalty hears of the order's events (points, coupons)."""
    asyncio.run(Relay(test_db.writer, holder="gift-return-test").run_once())


def _points(client: TestClient, chain: Chain, member: Any) -> int:
    balance = ok(client.get(f"/api/v1/members/{member.id}/points", headers=chain.app))
    return int(balance["balance"])


def _status(session: Session, coupon: Any) -> CouponStatus:
    held = session.get(Coupon, coupon.id, populate_existing=True)
    assert held is not None
    return held.status


def test_returning_goods_below_the_threshold_takes_the_kept_gifts_worth_from_the_refund(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
    test_db: Database,
) -> None:
    member = make_member()
    gift = chain.skus[2]
    coupon = _gift_coupon(session, member, gift)
    q, order = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    # The order keeps what earned the gift: 3 x 10.00 counted toward the 20.00 threshold.
    [given] = q["offers"]["gifts"]
    assert (given["coupon_id"], given["line"], given["worth"]) == (str(coupon.id), 1, 1000)
    assert (given["threshold_fen"], given["counted"]) == (2000, [[0, 3000]])
    _relay(test_db)
    assert _points(client, chain, member) == 30  # 1 a yuan of the 30.00 of goods paid

    # Two of the three come back: 10.00 kept is below 20.00, and she keeps the gift.
    reference = new_id()
    back = _return(client, chain, order, (0, 2), reference=reference)
    assert [x["refund"] for x in back["lines"]] == [2000]
    assert back["refund_total"] == 1000
    assert sum(r["amount"] for r in back["refunds"]) == 1000
    [taken] = back["gift_adjustments"]
    assert taken["coupon_id"] == str(coupon.id)
    assert taken["gift_line_id"] == order["lines"][GIFT]["id"]
    assert taken["gift_sku_id"] == str(gift.id)
    assert (taken["threshold_fen"], taken["kept_fen"]) == (2000, 1000)
    assert (taken["withheld"], taken["given_back"]) == (1000, 0)
    assert str(coupon.id) in taken["why"] and gift.code in taken["why"]
    assert "no longer reach its threshold (¥20.00)" in taken["why"]
    assert "its worth, ¥10.00, is taken from this refund" in taken["why"]
    after = _order(client, chain, order)
    assert (after["status"], after["refunded_amount"]) == ("partially_returned", 1000)
    _relay(test_db)
    assert _status(session, coupon) is CouponStatus.REDEEMED  # the coupon stays used
    assert _points(client, chain, member) == 20  # taken back for the 10.00 refunded

    # The same return sent again answers the first and takes nothing more.
    again = _return(client, chain, order, (0, 2), reference=reference, status=200)
    assert again == back
    assert _order(client, chain, order)["refunded_amount"] == 1000
    # Another return of the goods takes nothing twice.
    last = _return(client, chain, order, (0, 1))
    assert (last["refund_total"], last["gift_adjustments"]) == (1000, [])
    assert _order(client, chain, order)["refunded_amount"] == 2000


def test_a_return_that_keeps_the_threshold_refunds_in_full(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    coupon = _gift_coupon(session, member, chain.skus[2])
    _, order = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    back = _return(client, chain, order, (0, 1))  # 20.00 kept: the gift is still earned
    assert (back["refund_total"], back["gift_adjustments"]) == (1000, [])


def test_the_gift_returned_with_the_goods_or_before_them_costs_nothing(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    coupon = _gift_coupon(session, member, chain.skus[2])
    _, together = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    back = _return(client, chain, together, (0, 2), (GIFT, 1))
    assert (back["refund_total"], back["gift_adjustments"]) == (2000, [])

    coupon = _gift_coupon(session, member, chain.skus[2])
    _, first = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    gift_first = _return(client, chain, first, (GIFT, 1))
    assert (gift_first["refund_total"], gift_first["gift_adjustments"]) == (0, [])
    back = _return(client, chain, first, (0, 3))
    assert (back["refund_total"], back["gift_adjustments"]) == (3000, [])
    after = _order(client, chain, first)
    assert (after["status"], after["refunded_amount"]) == ("returned", 3000)


def test_the_gift_returned_after_its_worth_was_taken_gets_it_back(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    gift = chain.skus[2]
    coupon = _gift_coupon(session, member, gift)
    _, order = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    assert _return(client, chain, order, (0, 2))["refund_total"] == 1000

    back = _return(client, chain, order, (GIFT, 1))
    assert [x["refund"] for x in back["lines"]] == [0]  # the gift itself refunds nothing
    assert back["refund_total"] == 1000  # what was taken for it comes back
    [given] = back["gift_adjustments"]
    assert (given["withheld"], given["given_back"]) == (0, 1000)
    assert given["gift_line_id"] == order["lines"][GIFT]["id"]
    assert "came back, so the ¥10.00 withheld for it" in given["why"]
    assert sum(r["amount"] for r in back["refunds"]) == 1000

    last = _return(client, chain, order, (0, 1))
    assert (last["refund_total"], last["gift_adjustments"]) == (1000, [])
    after = _order(client, chain, order)
    # All the goods paid, nothing more (the parcel's 6.00 fee paid for its carriage).
    assert (after["status"], after["refunded_amount"], after["paid_amount"]) == (
        "returned",
        3000,
        3600,
    )


def test_a_gift_worth_more_than_a_return_refunds_takes_that_refund_and_the_rest_later(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    coupon = _gift_coupon(session, member, chain.skus[2], units=2, threshold=3000)
    _, order = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    assert order["lines"][GIFT]["amount"] == 2000
    first = _return(client, chain, order, (0, 1))
    assert (first["refund_total"], first["refunds"]) == (0, [])
    assert first["gift_adjustments"][0]["withheld"] == 1000
    assert "¥10.00 of its worth (¥20.00)" in first["gift_adjustments"][0]["why"]
    second = _return(client, chain, order, (0, 1))
    assert (second["refund_total"], second["gift_adjustments"][0]["withheld"]) == (0, 1000)
    third = _return(client, chain, order, (0, 1))  # all its worth is taken: nothing more
    assert (third["refund_total"], third["gift_adjustments"]) == (1000, [])
    assert _order(client, chain, order)["refunded_amount"] == 1000

    # One of the two gifts back: half their worth given back; the other: the rest.
    half = _return(client, chain, order, (GIFT, 1))
    assert (half["refund_total"], half["gift_adjustments"][0]["given_back"]) == (1000, 1000)
    rest = _return(client, chain, order, (GIFT, 1))
    assert rest["refund_total"] == 1000
    after = _order(client, chain, order)
    assert (after["status"], after["refunded_amount"]) == ("returned", 3000)


def test_only_the_goods_the_coupon_covers_count_toward_its_threshold(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    coupon = _gift_coupon(session, member, chain.skus[2], only=chain.skus[0])
    q, order = _delivered(client, chain, providers, member, coupon, chain.basket(2, 2))
    assert q["offers"]["gifts"][0]["counted"] == [[0, 2000]]
    # The goods the coupon does not cover come back: the gift is still earned.
    other = _return(client, chain, order, (1, 2))
    assert (other["refund_total"], other["gift_adjustments"]) == (2000, [])
    # One of the covered ones: 10.00 of them kept, below 20.00.
    covered = _return(client, chain, order, (0, 1))
    assert covered["refund_total"] == 0
    assert covered["gift_adjustments"][0]["kept_fen"] == 1000
