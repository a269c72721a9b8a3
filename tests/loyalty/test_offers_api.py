"""Promotions and coupons through HTTP: HQ defines them, every touchpoint prices and uses them."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, ok
from zhongtai.catalog.models import Product
from zhongtai.core.auth.roles import Channel, Role

MAN_JIAN = {
    "code": "MJ618",
    "name": "满100减20 满200减50",
    "kind": "tiered_amount_off",
    "terms": {"tiers": [[10_000, 2_000], [20_000, 5_000]]},
}


def _hq(factory: Factory) -> dict[str, str]:
    return factory.staff_headers(Role.HQ_ADMIN)


def test_hq_runs_a_promotion_and_a_bad_one_is_refused_naming_the_field(
    client: TestClient, factory: Factory
) -> None:
    hq = _hq(factory)
    created = ok(client.post("/api/v1/promotions", json=MAN_JIAN, headers=hq), 201)
    assert created["terms"] == {"tiers": [[10_000, 2_000], [20_000, 5_000]]}
    again = client.post("/api/v1/promotions", json=MAN_JIAN, headers=hq)
    assert again.status_code == 409 and again.json()["type"].endswith("/already-exists")
    bad = client.post(
        "/api/v1/promotions",
        json={**MAN_JIAN, "code": "BAD", "terms": {"tiers": [[10_000, 20_000]]}},
        headers=hq,
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "terms.tiers[0]"
    paused = ok(
        client.put(
            f"/api/v1/promotions/{created['id']}", json={**MAN_JIAN, "active": False}, headers=hq
        )
    )
    assert paused["active"] is False
    live = ok(
        client.get("/api/v1/promotions", params={"live_at": "2030-01-01T00:00:00Z"}, headers=hq)
    )
    assert live["items"] == []


def test_a_touchpoint_cannot_define_promotions(client: TestClient, factory: Factory) -> None:
    app = factory.api_key_headers(Channel.APP)
    assert client.post("/api/v1/promotions", json=MAN_JIAN, headers=app).status_code == 403


def _price(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return ok(client.post("/api/v1/offers/price", json=body, headers=headers))


def test_a_basket_is_priced_with_its_promotions_by_category_and_explained(
    client: TestClient, chain: Chain, session: Session
) -> None:
    hq = chain.hq
    milk, bread = chain.skus[0], chain.skus[1]
    category = session.get(Product, milk.product_id).category_id  # type: ignore[union-attr]
    ok(client.post("/api/v1/promotions", json=MAN_JIAN, headers=hq), 201)
    ok(
        client.post(
            "/api/v1/promotions",
            json={
                "code": "CAT-B2G1",
                "name": "买二送一",
                "kind": "buy_n_get_m",
                "terms": {"buy": 2, "get": 1},
                "scope": {"category_ids": [str(category)], "channels": ["app"]},
                "priority": 10,
                "exclusive": True,
            },
            headers=hq,
        ),
        201,
    )
    lines = [
        {"sku_id": str(milk.id), "unit_price": 3_000, "quantity": 3},
        {"sku_id": str(bread.id), "unit_price": 12_000, "quantity": 1},
    ]
    priced = _price(client, chain.app, channel="app", lines=lines)
    verdicts = {e["name"]: e for e in priced["explanations"]}
    assert verdicts["买二送一"]["applied"] and verdicts["买二送一"]["amount"] == 3_000
    # The basket's other line alone reaches ¥100 after the exclusive promotion took the milk.
    assert verdicts["满100减20 满200减50"]["amount"] == 2_000
    assert priced["total"] == 9_000 + 12_000 - 3_000 - 2_000
    assert sum(share["amount"] for ln in priced["lines"] for share in ln["discounts"]) == 5_000
    on_the_till = _price(client, chain.app, channel="pos", lines=lines)
    assert {e["name"]: e["reason"] for e in on_the_till["explanations"]}["买二送一"] == (
        "other_channel"
    )


def _template(client: TestClient, hq: dict[str, str], **extra: Any) -> Any:
    body = {"code": "C20", "name": "满100减20", "kind": "amount_off", "value": 2_000}
    body |= {"threshold_fen": 10_000, "valid_days": 30, **extra}
    return ok(client.post("/api/v1/coupon-templates", json=body, headers=hq), 201)


def test_a_coupon_is_issued_priced_locked_and_redeemed_once_across_touchpoints(
    client: TestClient, factory: Factory, make_member: MakeMember, session: Session
) -> None:
    hq, app = _hq(factory), factory.api_key_headers(Channel.APP)
    till = factory.api_key_headers(Channel.POS, store=factory.location())
    member = make_member()
    session.commit()
    template = _template(client, hq)
    coupon = ok(
        client.post(
            f"/api/v1/coupon-templates/{template['id']}/issue",
            json={"member_id": str(member.id)},
            headers=hq,
        ),
        201,
    )
    wallet = ok(client.get(f"/api/v1/members/{member.id}/coupons", headers=app))
    assert [c["id"] for c in wallet["items"]] == [coupon["id"]]
    priced = _price(
        client,
        app,
        channel="app",
        member_id=str(member.id),
        coupon_ids=[coupon["id"]],
        lines=[{"unit_price": 12_000, "quantity": 1}],
    )
    assert priced["total"] == 10_000 and priced["coupons_used"] == [f"coupon:{coupon['id']}"]
    base = f"/api/v1/members/{member.id}/coupons/{coupon['id']}"
    ok(client.post(f"{base}/lock", json={"reference": "quote:Q1"}, headers=app))
    redeem = {"source_type": "order", "source_id": "APP-ORDER-1", "discount_fen": 2_000}
    at_till = client.post(
        f"{base}/redeem",
        json={**redeem, "source_type": "pos_sale", "source_id": "T-1"},
        headers=till,
    )
    assert at_till.status_code == 409
    assert at_till.json()["type"].endswith("/coupon-not-redeemable")
    used = ok(
        client.post(f"{base}/redeem", json={**redeem, "reference": "quote:Q1"}, headers=app), 201
    )
    assert used["status"] == "redeemed"
    ok(client.post(f"{base}/redeem", json={**redeem, "reference": "quote:Q1"}, headers=app), 200)


def test_a_member_claims_a_coupon_with_its_code_once(
    client: TestClient, factory: Factory, make_member: MakeMember, session: Session
) -> None:
    hq, app = _hq(factory), factory.api_key_headers(Channel.APP)
    member = make_member()
    session.commit()
    _template(client, hq, claim_code="NEW2026", per_member_limit=1, total_limit=100)
    url = f"/api/v1/members/{member.id}/coupons/claim"
    ok(client.post(url, json={"claim_code": "new2026"}, headers=app), 201)
    again = client.post(url, json={"claim_code": "NEW2026"}, headers=app)
    assert again.status_code == 409 and again.json()["type"].endswith("/coupon-limit-reached")


def test_a_coupon_template_without_an_end_is_refused_naming_the_field(
    client: TestClient, factory: Factory
) -> None:
    body = {"code": "NOEND", "name": "x", "kind": "amount_off", "value": 100}
    refused = client.post("/api/v1/coupon-templates", json=body, headers=_hq(factory))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "valid_days"


def test_a_coupon_template_that_has_already_ended_is_refused_naming_the_field(
    client: TestClient, factory: Factory
) -> None:
    body = {"code": "OVER", "name": "x", "kind": "amount_off", "value": 100}
    body |= {"valid_from": "2020-01-01T00:00:00+08:00", "valid_until": "2020-02-01T00:00:00+08:00"}
    refused = client.post("/api/v1/coupon-templates", json=body, headers=_hq(factory))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "valid_until"


def test_a_till_pricing_a_gift_coupon_learns_which_gift_and_how_many_to_add_free(
    client: TestClient, chain: Chain, make_member: MakeMember, session: Session
) -> None:
    member = make_member()
    session.commit()
    gift = chain.skus[2]
    template = _template(
        client, chain.hq, code="GIFT2", kind="gift_item", value=2, gift_sku_id=str(gift.id)
    )
    coupon = ok(
        client.post(
            f"/api/v1/coupon-templates/{template['id']}/issue",
            json={"member_id": str(member.id)},
            headers=chain.hq,
        ),
        201,
    )
    body = {"channel": "pos", "member_id": str(member.id), "coupon_ids": [coupon["id"]]}
    below = _price(client, chain.app, **body, lines=[{"unit_price": 9_000, "quantity": 1}])
    assert below["gifts"] == [] and below["gift_sku_ids"] == []
    priced = _price(client, chain.app, **body, lines=[{"unit_price": 12_000, "quantity": 1}])
    assert priced["gifts"] == [
        {"source": f"coupon:{coupon['id']}", "sku_id": str(gift.id), "quantity": 2}
    ]
    assert priced["gift_sku_ids"] == [str(gift.id)]
    assert priced["total"] == 12_000  # the till adds the gift lines, free, itself
