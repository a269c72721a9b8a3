"""Promotions and coupons in the checkout: priced per line in the quote, the coupon held for the
checkout and used once when the order is paid."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, pay_by_wallet, place, quote
from zhongtai.integrations.providers import Providers
from zhongtai.loyalty import coupons, service
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import Coupon
from zhongtai.loyalty.promotion_rules import PromotionKind, Scope


def test_a_promotion_and_a_coupon_price_the_quote_per_line_and_the_coupon_is_used_once_paid(
    client: TestClient,
    chain: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    service.create_promotion(
        session,
        service.PromotionDefinition(
            code="TEN",
            name="九折",
            kind=PromotionKind.PERCENT_OFF,
            terms={"percent": 10},
            scope=Scope(),
        ),  # type: ignore[call-arg]
    )
    member = make_member()
    template = coupons.create_template(
        session,
        code="MJ20",
        name="满20减5",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 500, threshold_fen=2000),
        valid_days=30,
    )
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()

    q = quote(
        client,
        chain.app,
        {
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(2, 1),
            "member_id": str(member.id),
            "coupon_ids": [str(coupon.id)],
        },
    )
    # 3 x 10.00 = 30.00; 10% off = 3.00; then 5.00 off the 27.00 left.
    assert (q["subtotal"], q["discount_total"], q["total"]) == (3000, 800, 2200)
    assert sum(line["discount"] for line in q["lines"]) == 800
    applied = {e["source"].split(":")[0] for e in q["offers"]["explanations"] if e["applied"]}
    assert applied == {"promotion", "coupon"}
    assert q["offers"]["coupons"] == [{"coupon_id": str(coupon.id), "amount": 500}]
    held = session.get(Coupon, coupon.id, populate_existing=True)
    assert held is not None and held.status.value == "locked"

    order = place(client, chain.app, q["id"])
    assert order["total"] == 2200
    pay_by_wallet(client, providers, chain.app, order["id"])
    used = session.get(Coupon, coupon.id, populate_existing=True)
    assert used is not None and used.status.value == "redeemed"

    again = client.post(
        "/api/v1/checkout/quotes",
        json={
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(2, 1),
            "member_id": str(member.id),
            "coupon_ids": [str(coupon.id)],
        },
        headers=chain.app,
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/coupon-not-redeemable")


def test_coupons_without_a_member_are_refused_naming_the_field(
    client: TestClient, chain: Chain
) -> None:
    answer = client.post(
        "/api/v1/checkout/quotes",
        json={
            "fulfillment_type": "pickup",
            "store_id": str(chain.store.id),
            "lines": chain.basket(1),
            "coupon_ids": [str(uuid.uuid4())],
        },
        headers=chain.app,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "coupon_ids"
