"""The member 360 (GET /members/{id}/overview): who she is, what she bought in every channel, her
points, coupons and guide, on one page; masked by role, found by any id she ever had."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.inventory.conftest import StockFactory
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok, pay_by_wallet, place, quote
from tests.statements import statements_on
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.core.clock import utcnow
from zhongtai.core.db import Database
from zhongtai.guides import roster
from zhongtai.guides.binding import touch_member
from zhongtai.guides.binding_rules import BindingSource
from zhongtai.integrations.providers import Providers
from zhongtai.integrations.relay import Relay
from zhongtai.loyalty import coupons
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import SourceType
from zhongtai.members.hooks import OVERVIEW_SECTIONS
from zhongtai.members.overview import member_overview
from zhongtai.members.pii import PiiCipher
from zhongtai.members.schemas import MemberOverviewOut


@pytest.fixture
def shop(session: Session, factory: Factory) -> Chain:
    """The orders tests' small chain: one store with stock, the app's key, a clerk and HQ."""
    return Chain(session, factory, StockFactory(session, factory))


def overview_of(client: TestClient, member_id: object, headers: dict[str, str]) -> Any:
    return ok(client.get(f"/api/v1/members/{member_id}/overview", headers=headers))


def till_sale(client: TestClient, chain: Chain, member_id: object, quantity: int = 1) -> Any:
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = {
        "client_sale_id": new_id(),
        "member_id": str(member_id),
        "lines": [{"sku_id": str(chain.skus[0].id), "quantity": quantity}],
        "tenders": [{"type": "cash", "amount": 1_000_000}],
    }
    return ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 201)


def app_order(client: TestClient, chain: Chain, member_id: object) -> Any:
    body = {
        "fulfillment_type": "pickup",
        "store_id": str(chain.store.id),
        "lines": chain.basket(0, 2),
        "member_id": str(member_id),
    }
    return place(client, chain.app, quote(client, chain.app, body)["id"])


def by_channel(overview: Any) -> dict[str, Any]:
    return {c["channel"]: c for c in overview["orders"]["channels"]}


def test_the_overview_of_a_member_with_a_till_sale_and_an_app_order_shows_both_channels(
    client: TestClient,
    shop: Chain,
    providers: Providers,
    session: Session,
    make_member: MakeMember,
) -> None:
    member = make_member(name="陈静")
    session.commit()
    sale = till_sale(client, shop, member.id, quantity=3)
    order = app_order(client, shop, member.id)
    pay_by_wallet(client, providers, shop.app, order["id"])

    overview = overview_of(client, member.id, shop.hq)

    assert overview["member"]["name"] == "陈静"
    channels = by_channel(overview)
    assert set(channels) == {"pos", "app", "mini_program", "marketplace", "guide_share"}
    assert (channels["pos"]["orders_12m"], channels["pos"]["net_spend_12m"]) == (1, sale["total"])
    assert (channels["app"]["orders_12m"], channels["app"]["net_spend_12m"]) == (
        1,
        order["total"],
    )
    assert channels["mini_program"]["orders_all_time"] == 0
    orders = overview["orders"]
    assert orders["net_spend_all_time"] == sale["total"] + order["total"]
    latest = orders["latest"]
    assert [(o["channel"], o["fulfillment_type"]) for o in latest] == [
        ("app", "pickup"),
        ("pos", "in_store"),
    ]
    assert latest[0]["number"] == order["number"] and latest[0]["status"] == "paid"
    assert latest[1]["store_name"] == shop.store.name
    assert orders["last_order_at"] == latest[0]["placed_at"]
    assert orders["first_order_at"] == latest[1]["placed_at"]
    assert overview["guide"] == {"current": None}
    assert overview["feedback"] is None


def test_an_order_still_awaiting_payment_is_listed_but_is_not_spend(
    client: TestClient, shop: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    session.commit()
    order = app_order(client, shop, member.id)

    orders = overview_of(client, member.id, shop.hq)["orders"]

    assert [(o["order_id"], o["status"]) for o in orders["latest"]] == [(order["id"], "created")]
    assert (orders["orders_all_time"], orders["net_spend_all_time"]) == (0, 0)
    assert orders["first_order_at"] is None


def test_a_guide_sees_the_phone_masked_in_the_overview_and_hq_sees_it_whole(
    client: TestClient, shop: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member("13912345678")
    session.commit()
    guide = shop.factory.staff_headers(Role.GUIDE, [shop.store])

    seen_by_guide = overview_of(client, member.id, guide)
    seen_by_hq = overview_of(client, member.id, shop.hq)

    assert seen_by_guide["member"]["identities"] == [
        {"kind": "phone", "value": "139****5678", "masked": True}
    ]
    assert seen_by_hq["member"]["identities"] == [
        {"kind": "phone", "value": "13912345678", "masked": False}
    ]
    # Exactly as reading the member answers each of them.
    assert seen_by_guide["member"] == ok(client.get(f"/api/v1/members/{member.id}", headers=guide))


def test_a_caller_who_may_not_read_members_gets_no_overview(
    client: TestClient, shop: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    session.commit()
    erp = shop.factory.api_key_headers(Channel.ERP)
    r = client.get(f"/api/v1/members/{member.id}/overview", headers=erp)
    assert r.status_code == 403
    assert r.json()["permission"] == "members:read"


def test_a_merged_members_id_answers_the_survivors_overview_with_her_orders_and_points(
    client: TestClient,
    shop: Chain,
    session: Session,
    test_db: Database,
    make_member: MakeMember,
) -> None:
    survivor, duplicate = make_member(name="王芳"), make_member()
    session.commit()
    survivor_sale = till_sale(client, shop, survivor.id)
    duplicate_sale = till_sale(client, shop, duplicate.id, quantity=2)
    asyncio.run(Relay(test_db.writer, holder="overview-test").run_once())  # earns both points
    before = overview_of(client, survivor.id, shop.hq)["points"]["balance"]
    duplicates_points = overview_of(client, duplicate.id, shop.hq)["points"]["balance"]
    assert duplicates_points > 0

    ok(
        client.post(
            f"/api/v1/members/{survivor.id}/merge",
            json={"merged_member_id": str(duplicate.id)},
            headers=shop.hq,
        )
    )
    overview = overview_of(client, duplicate.id, shop.hq)

    assert overview["member"]["id"] == str(survivor.id)
    assert overview["member"]["name"] == "王芳"
    assert overview["merged_member_ids"] == [str(duplicate.id)]
    pos = by_channel(overview)["pos"]
    assert (pos["orders_all_time"], pos["net_spend_all_time"]) == (
        2,
        survivor_sale["total"] + duplicate_sale["total"],
    )
    assert {o["order_id"] for o in overview["orders"]["latest"]} == {
        survivor_sale["order_id"],
        duplicate_sale["order_id"],
    }
    assert overview["points"]["balance"] == before + duplicates_points
    assert overview_of(client, survivor.id, shop.hq) == overview


def test_her_points_expiring_within_30_days_her_usable_coupons_and_her_guide_are_shown(
    client: TestClient, shop: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    loyalty.earn_points(
        session,
        member.id,
        loyalty.Source(SourceType.CAMPAIGN, "spring"),
        40,
        valid_for=timedelta(days=10),
    )
    loyalty.earn_points(session, member.id, loyalty.Source(SourceType.CAMPAIGN, "summer"), 60)
    big = coupons.create_template(
        session,
        code="OV20",
        name="满199减20",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 2_000, threshold_fen=19_900),
        valid_days=30,
    )
    small = coupons.create_template(
        session,
        code="OV5",
        name="减5元",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 500),
        valid_days=7,
    )
    kept = coupons.issue_coupon(session, big.id, member.id)
    spent = coupons.issue_coupon(session, small.id, member.id)
    loyalty.redeem_coupon(
        session, spent.id, loyalty.Source(SourceType.ORDER, "O-OV"), discount_fen=500
    )
    staff = shop.factory.staff(Role.GUIDE, [shop.store])
    roster.enroll_guide(session, staff.id)
    touch_member(session, member.id, staff.id, BindingSource.MANAGER, at=utcnow())
    session.commit()

    overview = overview_of(client, member.id, shop.hq)

    points = overview["points"]
    assert (points["balance"], points["expiring_30d"]) == (100, 40)
    assert [e["points"] for e in points["expiring"]] == [40]
    assert points["tier"] == "standard"
    assert overview["coupons"]["used"] == 1 and overview["coupons"]["expired"] == 0
    [active] = overview["coupons"]["active"]
    assert active["coupon_id"] == str(kept.id)
    assert (active["template_name"], active["value_summary"]) == ("满199减20", "¥20 off from ¥199")
    current = overview["guide"]["current"]
    assert (current["guide_id"], current["name"]) == (str(staff.id), staff.display_name)
    assert (current["store_name"], current["source"]) == (shop.store.name, "manager")


def test_an_unknown_member_has_no_overview_and_answers_404_problem_json(
    client: TestClient, shop: Chain
) -> None:
    unknown = uuid.uuid4()
    r = client.get(f"/api/v1/members/{unknown}/overview", headers=shop.hq)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["member_id"] == str(unknown)


def test_every_registered_section_has_its_documented_place_in_the_overview() -> None:
    fields = set(MemberOverviewOut.model_fields)
    assert {"orders", "points", "coupons", "guide"} <= set(OVERVIEW_SECTIONS)
    assert set(OVERVIEW_SECTIONS) <= fields


def test_the_overview_reads_as_many_statements_for_a_long_history_as_for_a_short_one(
    client: TestClient,
    shop: Chain,
    providers: Providers,
    session: Session,
    connection: Connection,
    cipher: PiiCipher,
    make_member: MakeMember,
) -> None:
    newcomer, regular = make_member(), make_member()
    template = coupons.create_template(
        session,
        code="OVN",
        name="九折",
        terms=CouponTerms(CouponKind.PERCENT_OFF, 10, cap_fen=3_000),
        valid_days=30,
        per_member_limit=5,
    )
    for _ in range(4):
        coupons.issue_coupon(session, template.id, regular.id)
    for n in range(5):
        loyalty.earn_points(
            session,
            regular.id,
            loyalty.Source(SourceType.CAMPAIGN, f"c{n}"),
            10,
            valid_for=timedelta(days=5 + n),
        )
    session.commit()
    till_sale(client, shop, newcomer.id)
    for _ in range(6):
        till_sale(client, shop, regular.id)
    for _ in range(3):
        pay_by_wallet(client, providers, shop.app, app_order(client, shop, regular.id)["id"])

    def statements_for(member_id: uuid.UUID) -> int:
        session.expunge_all()
        with statements_on(connection, session) as sent:
            member_overview(session, cipher, member_id, may_see_pii=False, now=utcnow())
        return len(sent)

    assert statements_for(regular.id) == statements_for(newcomer.id)
