"""A checkout for a member who was erased: nobody is left to sell to, so quoting for her and
placing a quote made before her erasure are refused (409 ``member-erased``) and change nothing:
no stock held or moved, no coupon locked or used, no order."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from tests.orders.conftest import Chain, ok, quote
from zhongtai.core.outbox import OutboxEvent
from zhongtai.loyalty import coupons
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import Coupon, CouponStatus
from zhongtai.members import service as members
from zhongtai.members.models import Member
from zhongtai.orders.models import Order, Quote


def _coupon(session: Session, member: Member) -> Coupon:
    template = coupons.create_template(
        session,
        code=f"ERASED-{member.id.hex[:8]}",
        name="减5元",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 500),
        valid_days=9,
    )
    coupon = coupons.issue_coupon(session, template.id, member.id)
    session.commit()
    return coupon


def _pickup(chain: Chain, member_id: Any, coupon: Coupon) -> dict[str, Any]:
    return {
        "fulfillment_type": "pickup",
        "store_id": str(chain.store.id),
        "lines": chain.basket(2),
        "member_id": str(member_id),
        "coupon_ids": [str(coupon.id)],
    }


def _erase(session: Session, member: Member) -> None:
    members.erase_member(session, member.id)
    session.commit()


def _coupon_now(session: Session, coupon: Coupon) -> tuple[CouponStatus, str | None]:
    held = session.get(Coupon, coupon.id, populate_existing=True)
    assert held is not None
    return held.status, held.locked_by


def _stock(chain: Chain) -> tuple[int, int]:
    balance = chain.stock.balance(chain.store, chain.skus[0])
    assert balance is not None
    return balance.on_hand, balance.reserved


def _refused_as_erased(response: Any, member: Member) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/member-erased")
    assert problem["member_id"] == str(member.id)
    assert "erased" in problem["detail"]


def test_a_quote_for_an_erased_member_is_refused_and_holds_nothing(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    coupon = _coupon(session, member)
    _erase(session, member)

    refused = client.post(
        "/api/v1/checkout/quotes", json=_pickup(chain, member.id, coupon), headers=chain.app
    )

    _refused_as_erased(refused, member)
    assert _stock(chain) == (10, 0)
    assert _coupon_now(session, coupon) == (CouponStatus.AVAILABLE, None)
    assert session.scalar(select(func.count()).select_from(Quote)) == 0


@pytest.mark.parametrize("quoted_as", ["her own id", "an id merged into her"])
def test_a_quote_made_before_her_erasure_is_not_placed_and_changes_nothing(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember, quoted_as: str
) -> None:
    member = make_member()
    coupon = _coupon(session, member)
    quoted_for = member.id
    if quoted_as == "an id merged into her":
        duplicate = make_member()
        members.merge_members(session, member.id, duplicate.id)
        session.commit()
        quoted_for = duplicate.id
    q = quote(client, chain.app, _pickup(chain, quoted_for, coupon))
    assert q["discount_total"] == 500
    assert _stock(chain) == (10, 2)
    _erase(session, member)
    assert _stock(chain) == (10, 0), "her erasure let go of the quote's hold"

    refused = client.post("/api/v1/orders", json={"quote_id": q["id"]}, headers=chain.app)

    _refused_as_erased(refused, member)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert session.scalar(select(Quote.order_id).where(Quote.id == uuid.UUID(q["id"]))) is None
    assert _stock(chain) == (10, 0), "the placing took no stock"
    assert _coupon_now(session, coupon) == (CouponStatus.LOCKED, f"quote:{q['id']}")
    created = (
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "order.created")
    )
    assert session.scalar(created) == 0
    # Asked again, the same answer: the quote never becomes her order.
    again = client.post("/api/v1/orders", json={"quote_id": q["id"]}, headers=chain.app)
    _refused_as_erased(again, member)


def test_a_member_who_was_not_erased_places_her_quote(
    client: TestClient, chain: Chain, session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    coupon = _coupon(session, member)
    q = quote(client, chain.app, _pickup(chain, member.id, coupon))
    placed = ok(client.post("/api/v1/orders", json={"quote_id": q["id"]}, headers=chain.app), 201)
    assert (placed["member_id"], placed["total"]) == (str(member.id), q["total"])
