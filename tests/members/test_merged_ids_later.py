"""A merged member's id stays in the world (a till's offline queue, an app's cache, a coupon
link): whatever it is used for later, it must reach the person, that is her survivor's books."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from zhongtai.core.clock import utcnow
from zhongtai.loyalty import coupons
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.models import CouponStatus, SourceType
from zhongtai.loyalty.offers import shopper_context
from zhongtai.members import service


def test_the_ids_of_a_merged_member_are_her_survivors_with_the_survivor_first(
    session: Session, make_member: MakeMember
) -> None:
    survivor, first, second = make_member(), make_member(), make_member()
    service.merge_members(session, survivor.id, first.id)
    service.merge_members(session, survivor.id, second.id)
    for asked in (survivor.id, first.id, second.id):
        ids = service.member_ids_of(session, asked)
        assert ids[0] == survivor.id
        assert sorted(ids[1:]) == sorted([first.id, second.id])
        assert sorted(session.scalars(service.member_ids_select(asked))) == sorted(ids)


def test_the_ids_of_a_member_never_merged_are_hers_alone(
    session: Session, make_member: MakeMember
) -> None:
    member, other = make_member(), make_member()
    assert service.member_ids_of(session, member.id) == [member.id]
    assert list(session.scalars(service.member_ids_select(member.id))) == [member.id]
    assert other.id not in service.member_ids_of(session, member.id)


def test_a_till_still_holding_the_merged_id_redeems_her_coupon_now_kept_by_the_survivor(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    template = coupons.create_template(
        session,
        code="MERGED-ID-1",
        name="满100减20",
        terms=CouponTerms(CouponKind.AMOUNT_OFF, 2_000, threshold_fen=10_000),
        valid_days=30,
    )
    coupon = coupons.issue_coupon(session, template.id, duplicate.id)
    service.merge_members(session, survivor.id, duplicate.id)

    used = loyalty.redeem_coupon(
        session,
        coupon.id,
        loyalty.Source(SourceType.POS_SALE, "TILL-OFFLINE-1"),
        order_fen=12_000,
        member_id=duplicate.id,
    )

    assert (used.status, used.member_id, used.discount_fen) == (
        CouponStatus.REDEEMED,
        survivor.id,
        2_000,
    )


def test_a_shopper_known_by_her_merged_id_is_not_offered_the_new_member_deals_again(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    loyalty.earn_points(session, survivor.id, loyalty.Source(SourceType.POS_SALE, "S-FIRST"), 50)
    service.merge_members(session, survivor.id, duplicate.id)

    seen = shopper_context(
        session, channel="app", store_id=None, member_id=duplicate.id, now=utcnow()
    )

    assert seen.new_member is False


def test_her_rolling_spend_under_the_merged_id_counts_the_survivors_purchases(
    session: Session, make_member: MakeMember
) -> None:
    from zhongtai.loyalty.tiers import rolling_spend

    survivor, duplicate = make_member(), make_member()
    loyalty.earn_points(
        session,
        survivor.id,
        loyalty.Source(SourceType.POS_SALE, "S-SPEND"),
        300,
        basis_fen=30_000,
    )
    service.merge_members(session, survivor.id, duplicate.id)
    at = utcnow()
    assert rolling_spend(session, duplicate.id, at) == rolling_spend(session, survivor.id, at)
    assert rolling_spend(session, duplicate.id, at) == 30_000
