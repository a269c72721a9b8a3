"""Gift coupons online (满额赠): the checkout adds the gift as a free line from the fulfilling
store's shelf, holds it with the basket, and the coupon is used for what the gift was worth;
a gift that cannot come leaves the coupon the member's."""

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
    ok,
    pay_by_wallet,
    place,
    quote,
    store_step,
)
from tests.orders.gifting import coupon_status, gift_coupon
from tests.orders.returning import return_line
from zhongtai.catalog.models import Sku
from zhongtai.core.db import Database
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty.models import CouponStatus
from zhongtai.orders.pricing_rules import (
    BasketLine,
    Discount,
    GiftLine,
    price_with_gifts,
)


def _reserved(chain: Chain, sku: Sku) -> int:
    chain.session.expire_all()
    balance = chain.stock.balance(chain.store, sku)
    return balance.reserved if balance else 0


def _on_hand(chain: Chain, sku: Sku) -> int:
    chain.session.expire_all()
    balance = chain.stock.balance(chain.store, sku)
    return balance.on_hand if balance else 0


def _checkout(
    chain: Chain, member: Any, coupon: Any, lines: list[dict[str, Any]], kind: str = "pickup"
) -> dict[str, Any]:
    where: dict[str, Any] = (
        {"store_id": str(chain.store.id)} if kind == "pickup" else {"address": NEARBY}
    )
    return {
        "fulfillment_type": kind,
        **where,
        "lines": lines,
        "member_id": str(member.id),
        "coupon_ids": [str(coupon.id)],
    }


def _paid(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    member: Any,
    coupon: Any,
    lines: list[dict[str, Any]],
    kind: str = "pickup",
) -> Any:
    """An order of ``lines`` with the member's gift coupon, placed and paid by wallet."""
    q = quote(client, chain.app, _checkout(chain, member, coupon, lines, kind=kind))
    order = place(client, chain.app, q["id"])
    pay_by_wallet(client, providers, chain.app, order["id"])
    return order


def _gift_line(q: dict[str, Any], gift: Sku) -> dict[str, Any]:
    [line] = [x for x in q["lines"] if x["sku_id"] == str(gift.id) and x["net_amount"] == 0]
    return line


def test_a_gift_coupon_adds_its_gift_free_held_with_the_basket_and_is_used_for_its_worth(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    gift = chain.skus[2]
    coupon = gift_coupon(session, member, gift, units=2)
    q = quote(client, chain.app, _checkout(chain, member, coupon, chain.basket(3)))
    # 3 x 10.00 paid; two gifts worth 10.00 each, all of it taken off by the coupon.
    assert (q["subtotal"], q["discount_total"], q["total"]) == (5000, 2000, 3000)
    line = _gift_line(q, gift)
    assert (line["quantity"], line["amount"], line["discount"]) == (2, 2000, 2000)
    assert q["offers"]["coupons"] == [{"coupon_id": str(coupon.id), "amount": 2000}]
    [verdict] = q["offers"]["explanations"]
    assert verdict["applied"] and verdict["amount"] == 2000
    assert _reserved(chain, gift) == 2
    assert coupon_status(session, coupon) is CouponStatus.LOCKED

    order = place(client, chain.app, q["id"])
    assert order["total"] == 3000
    assert [(x["sku_id"], x["quantity"], x["net_amount"]) for x in order["lines"]] == [
        (str(chain.skus[0].id), 3, 3000),
        (str(gift.id), 2, 0),
    ]
    pay_by_wallet(client, providers, chain.app, order["id"])
    assert coupon_status(session, coupon) is CouponStatus.REDEEMED


def test_a_gift_the_store_has_none_of_is_not_added_and_the_coupon_stays_the_members(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    gift = chain.similar_sku(chain.skus[0], on_hand=0)
    coupon = gift_coupon(session, member, gift)
    q = quote(client, chain.app, _checkout(chain, member, coupon, chain.basket(3)))
    assert [x["sku_id"] for x in q["lines"]] == [str(chain.skus[0].id)]
    assert q["total"] == 3000
    assert q["offers"]["coupons"] == []
    [verdict] = q["offers"]["explanations"]
    assert not verdict["applied"]
    assert "out of stock at this store" in verdict["why"]
    assert "stays the member's" in verdict["why"]
    assert coupon_status(session, coupon) is CouponStatus.AVAILABLE


def test_a_basket_below_the_threshold_gets_no_gift_and_holds_none(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    gift = chain.skus[2]
    coupon = gift_coupon(session, member, gift, threshold=5000)
    q = quote(client, chain.app, _checkout(chain, member, coupon, chain.basket(3)))
    assert [x["sku_id"] for x in q["lines"]] == [str(chain.skus[0].id)]
    assert _reserved(chain, gift) == 0
    assert coupon_status(session, coupon) is CouponStatus.AVAILABLE


def test_a_gift_of_a_sku_in_the_basket_is_its_own_free_line_held_with_the_bought_units(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    gift = chain.skus[2]
    coupon = gift_coupon(session, member, gift)
    q = quote(client, chain.app, _checkout(chain, member, coupon, chain.basket(2, 0, 1)))
    assert [(x["sku_id"], x["quantity"], x["net_amount"]) for x in q["lines"]] == [
        (str(chain.skus[0].id), 2, 2000),
        (str(gift.id), 1, 1000),
        (str(gift.id), 1, 0),
    ]
    assert q["total"] == 3000
    assert _reserved(chain, gift) == 2


def test_a_gift_is_not_given_from_the_units_the_basket_itself_takes(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    gift = chain.similar_sku(chain.skus[0], on_hand=1)
    coupon = gift_coupon(session, member, gift)
    lines = [*chain.basket(2), {"sku_id": str(gift.id), "quantity": 1}]
    q = quote(client, chain.app, _checkout(chain, member, coupon, lines))
    assert [x["quantity"] for x in q["lines"]] == [2, 1]
    assert q["offers"]["coupons"] == []
    assert _reserved(chain, gift) == 1
    assert coupon_status(session, coupon) is CouponStatus.AVAILABLE


def test_a_gift_comes_back_onto_the_shelf_refunding_nothing(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    gift = chain.skus[2]
    coupon = gift_coupon(session, member, gift)
    order = _paid(client, chain, providers, member, coupon, chain.basket(3), kind="ship")
    done = deliver_parcel(client, chain, order["id"])
    assert _on_hand(chain, gift) == 9
    back = return_line(client, done, chain.clerk, store_id=chain.store.id, line=1)
    assert back["refund_total"] == 0
    assert _on_hand(chain, gift) == 10
    after = ok(client.get(f"/api/v1/orders/{order['id']}", headers=chain.app))
    assert after["refunded_amount"] == 0


def test_cancelling_an_order_with_a_gift_frees_the_gift_and_gives_the_coupon_back(
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
    order = _paid(client, chain, providers, member, coupon, chain.basket(3))
    assert coupon_status(session, coupon) is CouponStatus.REDEEMED
    cancelled = ok(
        client.post(
            f"/api/v1/orders/{order['id']}/cancel",
            json={"reason": "customer changed their mind"},
            headers=chain.app,
        )
    )
    assert (cancelled["status"], cancelled["refunded_amount"]) == ("cancelled", 3000)
    assert _reserved(chain, gift) == 0
    asyncio.run(Relay(test_db.writer, holder="gift-test").run_once())  # loyalty hears of it
    assert coupon_status(session, coupon) is CouponStatus.AVAILABLE


def test_a_gift_short_picked_beside_bought_units_of_its_sku_keeps_those_units_held(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member()
    gift = chain.skus[2]
    coupon = gift_coupon(session, member, gift)
    order = _paid(client, chain, providers, member, coupon, chain.basket(2, 0, 1))
    store_step(client, chain.clerk, order["id"], "accept")
    store_step(client, chain.clerk, order["id"], "start-picking")
    [bought, free] = [x for x in order["lines"] if x["sku_id"] == str(gift.id)]
    assert (bought["net_amount"], free["net_amount"]) == (1000, 0)
    packed = store_step(
        client, chain.clerk, order["id"], "pack", {"picks": [{"line_id": free["id"], "picked": 0}]}
    )
    assert packed["refunded_amount"] == 0  # the missing gift cost the customer nothing
    # The bought unit is still held for the order; the missing gift's hold is let go.
    assert (_on_hand(chain, gift), _reserved(chain, gift)) == (10, 1)


# --- the pricing rule ----------------------------------------------------------------------


def test_a_discount_for_every_line_keeps_to_the_basket_and_the_gift_costs_nothing() -> None:
    basket = [BasketLine(None, 1000, 1, 2), BasketLine(None, 500, 1, 2)]
    gift = GiftLine(BasketLine(None, 800, 1, 1), "coupon:g")
    without = price_with_gifts(
        basket, [], delivery_fee_rule=None, discounts=[Discount("promotion:p", 300)]
    )
    priced = price_with_gifts(
        basket, [gift], delivery_fee_rule=None, discounts=[Discount("promotion:p", 300)]
    )
    assert [x.net for x in priced.lines[:2]] == [x.net for x in without.lines]
    assert (priced.lines[2].amount, priced.lines[2].net) == (800, 0)
    assert priced.total == without.total == 2700
    assert priced.discount_total == without.discount_total + 800
