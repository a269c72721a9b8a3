"""Coupons: the discount rules, issuing within limits, redemption once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import AlreadyExists, InvalidInput
from zhongtai.loyalty import coupons, service
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms, coupon_discount
from zhongtai.loyalty.errors import CouponLimitReached, CouponNotRedeemable
from zhongtai.loyalty.models import CouponStatus, SourceType
from zhongtai.members import service as members

MAN_100_JIAN_20 = CouponTerms(CouponKind.AMOUNT_OFF, 2_000, threshold_fen=10_000)

terms_st = st.builds(
    CouponTerms,
    st.sampled_from(list(CouponKind)),
    st.integers(1, 100),
    st.integers(0, 100_000),
    st.one_of(st.none(), st.integers(0, 50_000)),
)


def test_man_100_jian_20_takes_20_yuan_off_from_100_yuan_and_nothing_below() -> None:
    assert coupon_discount(MAN_100_JIAN_20, 10_000) == 2_000
    assert coupon_discount(MAN_100_JIAN_20, 9_999) == 0


def test_percent_off_stops_at_its_cap() -> None:
    terms = CouponTerms(CouponKind.PERCENT_OFF, 15, cap_fen=3_000)
    assert coupon_discount(terms, 10_000) == 1_500
    assert coupon_discount(terms, 100_000) == 3_000


@given(terms_st, st.integers(-10, 1_000_000))
def test_a_discount_never_exceeds_the_order_nor_the_cap(terms: CouponTerms, order: int) -> None:
    discount = coupon_discount(terms, order)
    assert 0 <= discount <= max(0, order)
    assert terms.cap_fen is None or discount <= terms.cap_fen
    if order < terms.threshold_fen:
        assert discount == 0


def _template(session: Session, code: str = "MJ100-20", **kw: object):  # type: ignore[no-untyped-def]
    return coupons.create_template(
        session, code=code, name="满100减20", terms=MAN_100_JIAN_20, valid_days=30, **kw
    )


def test_a_member_holds_no_more_than_her_limit_and_the_template_no_more_than_its_total(
    session: Session, make_member: MakeMember
) -> None:
    template = _template(session, total_limit=2, per_member_limit=1)
    first, second, third = make_member(), make_member(), make_member()
    coupons.issue_coupon(session, template.id, first.id)
    with pytest.raises(CouponLimitReached, match="already holds"):
        coupons.issue_coupon(session, template.id, first.id)
    coupons.issue_coupon(session, template.id, second.id)
    with pytest.raises(CouponLimitReached, match="are issued"):
        coupons.issue_coupon(session, template.id, third.id)
    with pytest.raises(AlreadyExists):
        _template(session)


def test_a_coupon_is_redeemed_once_and_a_replay_of_the_same_order_answers_it_again(
    session: Session, make_member: MakeMember
) -> None:
    coupon = coupons.issue_coupon(session, _template(session).id, make_member().id)
    order = service.Source(SourceType.ORDER, "APP-1")
    used = service.redeem_coupon(session, coupon.id, order, order_fen=12_000)
    assert (used.status, used.discount_fen) == (CouponStatus.REDEEMED, 2_000)
    assert service.redeem_coupon(session, coupon.id, order, order_fen=12_000).id == coupon.id
    with pytest.raises(CouponNotRedeemable, match="already used"):
        service.redeem_coupon(
            session, coupon.id, service.Source(SourceType.POS_SALE, "T-1"), order_fen=12_000
        )


def test_an_expired_coupon_or_an_order_below_the_threshold_is_refused(
    session: Session, make_member: MakeMember
) -> None:
    coupon = coupons.issue_coupon(session, _template(session).id, make_member().id)
    sale = service.Source(SourceType.POS_SALE, "T-2")
    with pytest.raises(InvalidInput, match="order_fen"):
        service.redeem_coupon(session, coupon.id, sale, order_fen=5_000)
    with pytest.raises(CouponNotRedeemable, match="expired"):
        service.redeem_coupon(
            session, coupon.id, sale, order_fen=12_000, at=utcnow() + timedelta(days=31)
        )


def test_a_merge_moves_her_coupons_to_the_survivor(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    coupon = coupons.issue_coupon(session, _template(session).id, duplicate.id)
    trace = members.merge_members(session, survivor.id, duplicate.id)
    session.refresh(coupon)
    assert coupon.member_id == survivor.id
    assert trace.moved["points"]["coupons"] == 1
