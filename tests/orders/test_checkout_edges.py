"""Checkout at its edges: a quote let go, a quote of another channel, a coupon on a quote, a
channel's order id, a refused basket; each answers what it should and holds nothing it should
not."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import MakeMember
from tests.orders.conftest import NEARBY, Chain, place, quote
from zhongtai.core.auth.roles import Channel
from zhongtai.loyalty import coupons
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import Coupon, CouponStatus
from zhongtai.orders.models import Order

QUOTES = "/api/v1/checkout/quotes"
ORDERS = "/api/v1/orders"


def _reserved(chain: Chain, index: int = 0) -> int:
    balance = chain.stock.balance(chain.store, chain.skus[index])
    assert balance is not None
    return balance.reserved


def _orders(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Order)) or 0


def _delivery(chain: Chain, *quantities: int) -> dict[str, Any]:
    return {"fulfillment_type": "delivery", "address": NEARBY, "lines": chain.basket(*quantities)}


def _coupon(session: Session, make_member: MakeMember, code: str = "MJ20") -> tuple[Any, Any]:
    """A member with a 满20减5 coupon: (member, coupon)."""
    member = make_member()
    template = coupons.create_template(
        session,
        code=code,
        name="满20减5",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 500, threshold_fen=2000),
        valid_days=30,
    )
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()
    return member, coupon


def _coupon_status(session: Session, coupon: Any) -> CouponStatus:
    held = session.get(Coupon, coupon.id, populate_existing=True)
    assert held is not None
    return held.status


# --- a quote let go ---------------------------------------------------------------------------


def test_a_quote_let_go_cannot_be_placed_as_an_order_without_stock(
    client: TestClient, chain: Chain, session: Session
) -> None:
    q = quote(client, chain.app, _delivery(chain, 2))
    assert _reserved(chain) == 2
    gone = client.delete(f"{QUOTES}/{q['id']}", headers=chain.app)
    assert gone.status_code == 204, gone.text
    assert _reserved(chain) == 0
    placed = client.post(ORDERS, json={"quote_id": q["id"]}, headers=chain.app)
    assert placed.status_code == 409, placed.text
    assert placed.json()["type"].endswith("/quote-expired")
    assert _orders(session) == 0


def test_a_quote_let_go_gives_its_coupon_back_at_once(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member, coupon = _coupon(session, make_member)
    body = {
        **_delivery(chain, 3),
        "member_id": str(member.id),
        "coupon_ids": [str(coupon.id)],
    }
    q = quote(client, chain.app, body)
    assert q["offers"]["coupons"] == [{"coupon_id": str(coupon.id), "amount": 500}]
    assert _coupon_status(session, coupon) is CouponStatus.LOCKED
    gone = client.delete(f"{QUOTES}/{q['id']}", headers=chain.app)
    assert gone.status_code == 204, gone.text
    assert _coupon_status(session, coupon) is CouponStatus.AVAILABLE
    # The customer comes back to the checkout: the coupon prices her new quote.
    again = quote(client, chain.app, body)
    assert again["discount_total"] == 500


def test_a_quote_placed_as_an_order_cannot_be_let_go(client: TestClient, chain: Chain) -> None:
    q = quote(client, chain.app, _delivery(chain, 1))
    place(client, chain.app, q["id"])
    refused = client.delete(f"{QUOTES}/{q['id']}", headers=chain.app)
    assert refused.status_code == 409, refused.text
    assert _reserved(chain) == 1


def test_another_channel_can_neither_read_nor_let_go_of_a_quote(
    client: TestClient, chain: Chain, factory: Factory
) -> None:
    q = quote(client, chain.app, _delivery(chain, 1))
    marketplace = factory.api_key_headers(Channel.MARKETPLACE)
    read = client.get(f"{QUOTES}/{q['id']}", headers=marketplace)
    assert read.status_code == 403, read.text
    gone = client.delete(f"{QUOTES}/{q['id']}", headers=marketplace)
    assert gone.status_code == 403, gone.text
    assert _reserved(chain) == 1
    assert client.get(f"{QUOTES}/{q['id']}", headers=chain.app).status_code == 200


# --- coupons that give the order nothing ---------------------------------------------------------


def _member_coupon(session: Session, member: Any, code: str, terms: CouponTerms) -> Any:
    template = coupons.create_template(session, code=code, name=code, terms=terms, valid_days=30)
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()
    return coupon


def _pickup(chain: Chain, member: Any, coupon: Any, *quantities: int) -> dict[str, Any]:
    return {
        "fulfillment_type": "pickup",
        "store_id": str(chain.store.id),
        "lines": chain.basket(*quantities),
        "member_id": str(member.id),
        "coupon_ids": [str(coupon.id)],
    }


def test_a_free_delivery_coupon_on_a_pickup_is_not_held_nor_used(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    free = _member_coupon(session, member, "FREE", CouponTerms(CouponKind.FREE_DELIVERY, 0))
    q = quote(client, chain.app, _pickup(chain, member, free, 1))
    assert (q["delivery_fee"], q["total"]) == (0, 1000)
    assert q["offers"]["coupons"] == []
    [verdict] = q["offers"]["explanations"]
    assert not verdict["applied"] and "no delivery fee" in verdict["why"]
    assert _coupon_status(session, free) is CouponStatus.AVAILABLE
    # On a delivery the same coupon waives the fee, and is held for that checkout.
    delivered = quote(
        client,
        chain.app,
        {**_delivery(chain, 1), "member_id": str(member.id), "coupon_ids": [str(free.id)]},
    )
    assert delivered["delivery_fee"] == 0
    assert delivered["offers"]["coupons"] == [{"coupon_id": str(free.id), "amount": 0}]
    assert _coupon_status(session, free) is CouponStatus.LOCKED


# --- the channel's own order id -------------------------------------------------------------------


def test_a_quote_placed_as_one_channel_order_is_refused_for_another(
    client: TestClient, chain: Chain, session: Session
) -> None:
    q = quote(client, chain.app, _delivery(chain, 1))
    first = place(client, chain.app, q["id"], channel_order_id="APP-1")
    resent = client.post(
        ORDERS, json={"quote_id": q["id"], "channel_order_id": "APP-1"}, headers=chain.app
    )
    assert (resent.status_code, resent.json()["id"]) == (200, first["id"])
    other = client.post(
        ORDERS, json={"quote_id": q["id"], "channel_order_id": "APP-2"}, headers=chain.app
    )
    # APP-2 is another order of the channel's: answering APP-1's would let it think it placed.
    assert other.status_code == 409, other.text
    assert "APP-1" in other.json()["detail"]
    assert _orders(session) == 1


# --- a refused basket names its line ----------------------------------------------------------


def test_a_split_parcel_refused_for_a_sku_not_for_sale_names_the_line_asked_and_holds_nothing(
    client: TestClient, chain: Chain, session: Session
) -> None:
    # The store nearest the customer ranks first: its part of the parcel comes first.
    nearest = chain.open_store(latitude=NEARBY["latitude"], longitude=NEARBY["longitude"])
    only_there = chain.stock.sku()
    chain.stock.receive(nearest, only_there, 5)
    withdrawn = chain.skus[0]
    withdrawn.is_active = False
    session.commit()
    body = {
        "fulfillment_type": "ship",
        "address": NEARBY,
        "lines": [
            {"sku_id": str(withdrawn.id), "quantity": 1},
            {"sku_id": str(only_there.id), "quantity": 2},
        ],
    }
    refused = client.post(QUOTES, json=body, headers=chain.app)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "lines[0].sku_id"
    assert _reserved(chain) == 0
    held = chain.stock.balance(nearest, only_there)
    assert held is not None and held.reserved == 0


def test_a_sku_that_does_not_exist_is_a_422_naming_its_line_and_holds_nothing(
    client: TestClient, chain: Chain, session: Session
) -> None:
    lines = [*chain.basket(1), {"sku_id": str(uuid.uuid4()), "quantity": 1}]
    answer = client.post(
        "/api/v1/checkout/quotes",
        json={"fulfillment_type": "pickup", "store_id": str(chain.store.id), "lines": lines},
        headers=chain.app,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "lines.1.sku_id"
    assert chain.stock.balance(chain.store, chain.skus[0]).reserved == 0  # type: ignore[union-attr]


def test_a_service_name_longer_than_an_order_line_keeps_is_a_422_naming_it(
    client: TestClient, chain: Chain
) -> None:
    answer = client.post(
        "/api/v1/checkout/quotes",
        json={
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(1),
            "services": ["x" * 49],
        },
        headers=chain.app,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "services.0"


# --- what a customer typed --------------------------------------------------------------------


def test_a_contact_name_address_or_note_with_a_nul_is_refused_naming_the_field(
    client: TestClient, chain: Chain, session: Session
) -> None:
    """PostgreSQL refuses NUL in text: a 422 naming the field, not a 500, and no order."""
    q = quote(client, chain.app, _delivery(chain, 1))
    for field, value in (
        ("contact_name", "郑\x00洁"),
        ("address_text", "黄浦区\x00某小区"),
        ("note", "放门口\x00"),
        ("contact_name", "郑洁\n"),
    ):
        refused = client.post(ORDERS, json={"quote_id": q["id"], field: value}, headers=chain.app)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field
    assert _orders(session) == 0
    placed = place(client, chain.app, q["id"], note="放门口\n电话联系")
    assert placed["status"] == "created"
