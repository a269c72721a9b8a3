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
    deliver_parcel,
    new_id,
    ok,
    pay_by_wallet,
    place,
    quote,
)
from tests.orders.gifting import GIFT, coupon_status, gift_coupon
from tests.orders.returning import return_lines
from zhongtai.core.db import Database
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty.models import CouponStatus


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
    return q, deliver_parcel(client, chain, order["id"])


def _order(client: TestClient, chain: Chain, order: dict[str, Any]) -> Any:
    return ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))


def _relay(test_db: Database) -> None:
    """Loyalty hears of the order's events (points, coupons)."""
    asyncio.run(Relay(test_db.writer, holder="gift-return-test").run_once())


def _points(client: TestClient, chain: Chain, member: Any) -> int:
    balance = ok(client.get(f"/api/v1/members/{member.id}/points", headers=chain.app))
    return int(balance["balance"])


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
    coupon = gift_coupon(session, member, gift)
    q, order = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    # The order keeps what earned the gift: 3 x 10.00 counted toward the 20.00 threshold.
    [given] = q["offers"]["gifts"]
    assert (given["coupon_id"], given["line"], given["worth"]) == (str(coupon.id), 1, 1000)
    assert (given["threshold_fen"], given["counted"]) == (2000, [[0, 3000]])
    _relay(test_db)
    assert _points(client, chain, member) == 30  # 1 a yuan of the 30.00 of goods paid

    # Two of the three come back: 10.00 kept is below 20.00, and she keeps the gift.
    reference = new_id()
    back = return_lines(client, chain, order, (0, 2), reference=reference)
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
    assert coupon_status(session, coupon) is CouponStatus.REDEEMED  # the coupon stays used
    assert _points(client, chain, member) == 20  # taken back for the 10.00 refunded

    # The same return sent again answers the first and takes nothing more.
    again = return_lines(client, chain, order, (0, 2), reference=reference, status=200)
    assert again == back
    assert _order(client, chain, order)["refunded_amount"] == 1000
    # Another return of the goods takes nothing twice.
    last = return_lines(client, chain, order, (0, 1))
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
    coupon = gift_coupon(session, member, chain.skus[2])
    _, order = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    back = return_lines(client, chain, order, (0, 1))  # 20.00 kept: the gift is still earned
    assert (back["refund_total"], back["gift_adjustments"]) == (1000, [])


def test_the_gift_returned_with_the_goods_or_before_them_costs_nothing(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    coupon = gift_coupon(session, member, chain.skus[2])
    _, together = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    back = return_lines(client, chain, together, (0, 2), (GIFT, 1))
    assert (back["refund_total"], back["gift_adjustments"]) == (2000, [])

    coupon = gift_coupon(session, member, chain.skus[2])
    _, first = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    gift_first = return_lines(client, chain, first, (GIFT, 1))
    assert (gift_first["refund_total"], gift_first["gift_adjustments"]) == (0, [])
    back = return_lines(client, chain, first, (0, 3))
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
    coupon = gift_coupon(session, member, gift)
    _, order = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    assert return_lines(client, chain, order, (0, 2))["refund_total"] == 1000

    back = return_lines(client, chain, order, (GIFT, 1))
    assert [x["refund"] for x in back["lines"]] == [0]  # the gift itself refunds nothing
    assert back["refund_total"] == 1000  # what was taken for it comes back
    [given] = back["gift_adjustments"]
    assert (given["withheld"], given["given_back"]) == (0, 1000)
    assert given["gift_line_id"] == order["lines"][GIFT]["id"]
    assert "came back, so the ¥10.00 withheld for it" in given["why"]
    assert sum(r["amount"] for r in back["refunds"]) == 1000

    last = return_lines(client, chain, order, (0, 1))
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
    coupon = gift_coupon(session, member, chain.skus[2], units=2, threshold=3000)
    _, order = _delivered(client, chain, providers, member, coupon, chain.basket(3))
    assert order["lines"][GIFT]["amount"] == 2000
    first = return_lines(client, chain, order, (0, 1))
    assert (first["refund_total"], first["refunds"]) == (0, [])
    assert first["gift_adjustments"][0]["withheld"] == 1000
    assert "¥10.00 of its worth (¥20.00)" in first["gift_adjustments"][0]["why"]
    second = return_lines(client, chain, order, (0, 1))
    assert (second["refund_total"], second["gift_adjustments"][0]["withheld"]) == (0, 1000)
    third = return_lines(client, chain, order, (0, 1))  # all its worth is taken: nothing more
    assert (third["refund_total"], third["gift_adjustments"]) == (1000, [])
    assert _order(client, chain, order)["refunded_amount"] == 1000

    # One of the two gifts back: half their worth given back; the other: the rest.
    half = return_lines(client, chain, order, (GIFT, 1))
    assert (half["refund_total"], half["gift_adjustments"][0]["given_back"]) == (1000, 1000)
    rest = return_lines(client, chain, order, (GIFT, 1))
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
    coupon = gift_coupon(session, member, chain.skus[2], only=chain.skus[0])
    q, order = _delivered(client, chain, providers, member, coupon, chain.basket(2, 2))
    assert q["offers"]["gifts"][0]["counted"] == [[0, 2000]]
    # The goods the coupon does not cover come back: the gift is still earned.
    other = return_lines(client, chain, order, (1, 2))
    assert (other["refund_total"], other["gift_adjustments"]) == (2000, [])
    # One of the covered ones: 10.00 of them kept, below 20.00.
    covered = return_lines(client, chain, order, (0, 1))
    assert covered["refund_total"] == 0
    assert covered["gift_adjustments"][0]["kept_fen"] == 1000
