"""Edges of the points ledger and of coupons: merged members, rounding between points and fen,
time zones, and bad input answered 422 naming the field with nothing changed."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, new_id, ok
from zhongtai.core.auth.roles import Channel, Role
from zhongtai.loyalty import coupons, rules
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import CouponStatus, CouponTemplate, EntryKind, PointsEntry
from zhongtai.members import service as members
from zhongtai.orders.models import Order
from zhongtai.orders.points import earn_for_order, reverse_for_return


def _problem_field(response, status: int = 422) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["errors"][0]["field"])


# --- merged members -------------------------------------------------------------------------


def test_a_return_of_an_order_left_on_a_merged_id_takes_back_the_points_its_survivor_earned(
    client: TestClient, chain: Chain, make_member: MakeMember, session: Session
) -> None:
    """A merge moves her orders to the survivor, but an order written while it ran may stay on
    the merged id (orders.membership says so). Its points are booked on the survivor; its
    return must still find and take them back, not answer "nothing was earned"."""
    survivor, duplicate = make_member(), make_member()
    till = chain.factory.api_key_headers(Channel.POS, store=chain.store)
    sale = {
        "client_sale_id": new_id(),
        "member_id": str(duplicate.id),
        "lines": [{"sku_id": str(chain.skus[0].id), "quantity": 3}],
        "tenders": [{"type": "cash", "amount": 3_000}],
    }
    done = ok(client.post("/api/v1/pos/sales", json=sale, headers=till), 201)
    order_id = uuid.UUID(done["order_id"])
    members.merge_members(session, survivor.id, duplicate.id)
    # The order written concurrently with the merge, left on the merged id.
    session.execute(update(Order).where(Order.id == order_id).values(member_id=duplicate.id))
    session.expire_all()

    earned = earn_for_order(session, order_id, points_per_yuan=1)
    assert earned is not None and earned.entry.member_id == survivor.id
    back = reverse_for_return(session, order_id, uuid.uuid4(), 1_000)

    assert back is not None, "the return found no points to take back"
    assert loyalty.points_balance(session, survivor.id, back.entry.occurred_at).balance == 20
    assert loyalty.verify(session).clean


# --- rounding between points and fen --------------------------------------------------------


def test_the_points_an_order_may_be_paid_with_are_always_worth_whole_fen() -> None:
    """At 250 points a yuan one fen is 2.5 points: only multiples of 5 points are whole fen
    (and pay_with_points refuses anything else), so the offer must never be 2, 4 or 8."""
    for rate in (150, 250, 40, 100, 1_000):
        for balance in range(0, 40):
            points = rules.redeemable_points(
                order_fen=10_000, balance=balance, points_per_yuan_off=rate, max_share_pct=50
            )
            assert 0 <= points <= balance
            assert points * 100 % rate == 0, (rate, balance, points)
    # The share cap is whole fen too: 1 fen of a 2 fen order at 250 points a yuan.
    capped = rules.redeemable_points(
        order_fen=2, balance=100, points_per_yuan_off=250, max_share_pct=50
    )
    assert capped * 100 % 250 == 0


# --- bad input: 422 naming the field, nothing changed ---------------------------------------


def test_a_coupon_template_with_dates_without_a_time_zone_is_refused_naming_the_field(
    client: TestClient, factory: Factory, session: Session
) -> None:
    """ "2026-12-31T23:59:59" is midnight where? A coupon's last moment must not be guessed
    (eight hours apart between UTC and Beijing): 422 naming the field, no template made."""
    hq = factory.staff_headers(Role.HQ_ADMIN)
    body = {"code": "NAIVE1", "name": "x", "kind": "amount_off", "value": 100}
    naive_end = client.post(
        "/api/v1/coupon-templates",
        json={**body, "valid_until": "2030-12-31T23:59:59"},
        headers=hq,
    )
    assert _problem_field(naive_end) == "valid_until"
    mixed = client.post(
        "/api/v1/coupon-templates",
        json={
            **body,
            "valid_from": "2030-01-01T00:00:00",
            "valid_until": "2030-12-31T23:59:59+08:00",
        },
        headers=hq,
    )
    assert _problem_field(mixed) == "valid_from"
    made = session.scalar(
        select(func.count()).select_from(CouponTemplate).where(CouponTemplate.code == "NAIVE1")
    )
    assert made == 0


def test_an_adjustment_beyond_what_the_books_can_hold_is_refused_naming_the_field(
    client: TestClient, factory: Factory, make_member: MakeMember, session: Session
) -> None:
    """Points columns are 32-bit integers on PostgreSQL: five billion points is a typo, not a
    correction, and must be 422 ``points`` (not a 500 from the database) with nothing booked."""
    member = make_member()
    session.commit()
    hq = factory.staff_headers(Role.HQ_ADMIN)
    for points in (5_000_000_000, -5_000_000_000):
        refused = client.post(
            f"/api/v1/members/{member.id}/points/adjust",
            json={"reference": f"ADJ-{points}", "points": points, "reason": "typo"},
            headers=hq,
        )
        assert _problem_field(refused) == "points"
    booked = session.scalar(
        select(func.count())
        .select_from(PointsEntry)
        .where(PointsEntry.member_id == member.id, PointsEntry.kind == EntryKind.ADJUST)
    )
    assert booked == 0


def test_a_coupon_is_not_redeemed_for_more_than_it_can_take_off(
    client: TestClient, factory: Factory, make_member: MakeMember, session: Session
) -> None:
    """A ¥5 coupon takes ¥5 off at most (a 15 % coupon at most its cap): a till reporting a
    ¥500 discount for it is refused naming ``discount_fen``, and the coupon stays hers."""
    member = make_member()
    five_off = coupons.create_template(
        session,
        code="EDGE5",
        name="减5元",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 500),
        valid_days=9,
    )
    capped = coupons.create_template(
        session,
        code="EDGE15",
        name="85折 最多20元",
        terms=CouponTerms(CouponKind.PERCENT_OFF, 15, cap_fen=2_000),
        valid_days=9,
    )
    held = [coupons.issue_coupon(session, t.id, member.id) for t in (five_off, capped)]
    session.commit()
    till = factory.api_key_headers(Channel.POS, store=factory.location())
    for coupon, too_much in zip(held, (50_000, 2_001), strict=True):
        refused = client.post(
            f"/api/v1/members/{member.id}/coupons/{coupon.id}/redeem",
            json={"source_type": "pos_sale", "source_id": new_id(), "discount_fen": too_much},
            headers=till,
        )
        assert _problem_field(refused) == "discount_fen"
        session.refresh(coupon)
        assert coupon.status is CouponStatus.AVAILABLE
    # What it can take off is accepted.
    fine = client.post(
        f"/api/v1/members/{member.id}/coupons/{held[0].id}/redeem",
        json={"source_type": "pos_sale", "source_id": new_id(), "discount_fen": 500},
        headers=till,
    )
    assert fine.status_code == 201, fine.text
