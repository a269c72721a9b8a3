"""Using coupons at any touchpoint: templates with restrictions and validity, claims with a code,
locked by a checkout, redeemed once, released on cancel or lapse, restored on a full return."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import AlreadyExists, InvalidInput, NotFound
from zhongtai.loyalty import coupons, service
from zhongtai.loyalty.coupon_rules import CouponKind, CouponTerms
from zhongtai.loyalty.errors import CouponLimitReached, CouponNotRedeemable, CouponTemplateClosed
from zhongtai.loyalty.models import Coupon, CouponAction, CouponStatus, CouponUse, SourceType
from zhongtai.members import service as members

TEN_OFF = CouponTerms(CouponKind.AMOUNT_OFF, 1_000, threshold_fen=5_000)


def _template(session: Session, code: str = "T10", **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("valid_days", 7)
    return coupons.create_template(session, code=code, name="满50减10", terms=TEN_OFF, **kw)


def _order(n: str) -> service.Source:
    return service.Source(SourceType.ORDER, n)


def _history(session: Session, coupon: Coupon) -> list[CouponAction]:
    return list(
        session.scalars(
            select(CouponUse.action).where(CouponUse.coupon_id == coupon.id).order_by(CouponUse.id)
        )
    )


def test_a_coupon_locked_by_one_checkout_is_refused_to_another_and_redeemed_by_its_order(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    coupon = coupons.issue_coupon(session, _template(session).id, member.id)
    service.lock_coupon(session, coupon.id, "quote:A", member_id=member.id)
    with pytest.raises(CouponNotRedeemable, match="held by another checkout"):
        service.lock_coupon(session, coupon.id, "quote:B", member_id=member.id)
    with pytest.raises(CouponNotRedeemable, match="held by another checkout"):
        service.redeem_coupon(session, coupon.id, _order("POS-1"), discount_fen=1_000)
    used = service.redeem_coupon(
        session, coupon.id, _order("APP-1"), discount_fen=1_000, reference="quote:A"
    )
    assert (used.status, used.discount_fen, used.locked_by) == (CouponStatus.REDEEMED, 1_000, None)
    assert _history(session, coupon) == [
        CouponAction.ISSUE,
        CouponAction.LOCK,
        CouponAction.REDEEM,
    ]


def test_a_cancelled_checkout_gives_its_coupon_back_and_a_lapsed_hold_frees_it(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    coupon = coupons.issue_coupon(session, _template(session).id, member.id)
    service.lock_coupon(session, coupon.id, "quote:A")
    assert service.release_coupons(session, "quote:A") == [coupon.id]
    assert service.release_coupons(session, "quote:A") == []
    now = utcnow()
    service.lock_coupon(session, coupon.id, "quote:B", hold=timedelta(minutes=15), at=now)
    later = now + timedelta(minutes=16)
    assert service.release_lapsed_locks(session, at=later) == 1
    used = service.redeem_coupon(session, coupon.id, _order("POS-2"), discount_fen=900, at=later)
    assert used.status is CouponStatus.REDEEMED


def test_a_lapsed_hold_does_not_stop_the_next_touchpoint_even_before_the_sweeper_runs(
    session: Session, make_member: MakeMember
) -> None:
    coupon = coupons.issue_coupon(session, _template(session).id, make_member().id)
    now = utcnow()
    service.lock_coupon(session, coupon.id, "quote:A", hold=timedelta(minutes=1), at=now)
    taken = service.lock_coupon(session, coupon.id, "quote:B", at=now + timedelta(minutes=2))
    assert taken.locked_by == "quote:B"


def test_a_coupon_is_not_another_members_to_use(session: Session, make_member: MakeMember) -> None:
    coupon = coupons.issue_coupon(session, _template(session).id, make_member().id)
    with pytest.raises(NotFound):
        service.lock_coupon(session, coupon.id, "quote:A", member_id=make_member().id)


def test_an_order_returned_in_full_gives_its_coupon_back_unless_the_template_says_no(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    kept = coupons.issue_coupon(session, _template(session).id, member.id)
    lost = coupons.issue_coupon(
        session,
        _template(
            session, "T10-FINAL", rules=coupons.TemplateRules(restore_on_full_return=False)
        ).id,
        member.id,
    )
    for coupon in (kept, lost):
        service.redeem_coupon(session, coupon.id, _order("ORDER-9"), discount_fen=1_000)
    assert service.restore_coupons_of(session, _order("ORDER-9")) == [kept.id]
    assert service.restore_coupons_of(session, _order("ORDER-9")) == []
    session.refresh(kept)
    assert (kept.status, kept.redeemed_source_id) == (CouponStatus.AVAILABLE, None)
    service.redeem_coupon(session, kept.id, _order("ORDER-10"), discount_fen=1_000)


def test_an_order_coming_back_gives_no_coupon_back_to_a_member_erased_meanwhile(
    session: Session, make_member: MakeMember
) -> None:
    """Hers stay used and are named as forfeited, for the caller to record why; those of a
    member merged into her count as hers."""
    member, duplicate = make_member(), make_member()
    used = coupons.issue_coupon(session, _template(session).id, member.id)
    never_back = coupons.issue_coupon(
        session,
        _template(
            session, "T10-KEEP", rules=coupons.TemplateRules(restore_on_full_return=False)
        ).id,
        member.id,
    )
    for coupon in (used, never_back):
        service.redeem_coupon(session, coupon.id, _order("ORDER-11"), discount_fen=1_000)
    members.merge_members(session, member.id, duplicate.id)
    members.erase_member(session, member.id)

    returned = service.give_back_coupons(session, duplicate.id, _order("ORDER-11"))
    assert (returned.restored, returned.forfeited) == ([], [used.id])
    cancelled = service.give_back_coupons(session, member.id, _order("ORDER-11"), cancelled=True)
    assert (cancelled.restored, cancelled.forfeited) == ([], sorted([used.id, never_back.id]))
    for coupon in (used, never_back):
        session.refresh(coupon)
        assert (coupon.status, coupon.redeemed_source_id) == (CouponStatus.REDEEMED, "ORDER-11")
        assert _history(session, coupon)[-1] is CouponAction.REDEEM


def test_an_order_coming_back_gives_its_coupons_back_to_a_member_not_erased(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    coupon = coupons.issue_coupon(session, _template(session).id, member.id)
    service.redeem_coupon(session, coupon.id, _order("ORDER-12"), discount_fen=1_000)
    back = service.give_back_coupons(session, member.id, _order("ORDER-12"))
    assert (back.restored, back.forfeited) == ([coupon.id], [])
    session.refresh(coupon)
    assert coupon.status is CouponStatus.AVAILABLE


def test_fixed_dates_bound_every_coupon_of_the_template(
    session: Session, make_member: MakeMember
) -> None:
    now = utcnow()
    template = _template(
        session,
        valid_days=None,
        valid_from=now + timedelta(days=1),
        valid_until=now + timedelta(days=3),
    )
    coupon = coupons.issue_coupon(session, template.id, make_member().id, at=now)
    assert coupon.starts_at == now + timedelta(days=1)
    assert coupon.expires_at == now + timedelta(days=3)
    with pytest.raises(CouponNotRedeemable, match="valid from"):
        service.redeem_coupon(session, coupon.id, _order("EARLY"), discount_fen=100, at=now)
    with pytest.raises(CouponTemplateClosed):
        coupons.issue_coupon(session, template.id, make_member().id, at=now + timedelta(days=4))


def test_n_days_after_issue_ends_before_the_templates_last_day_when_that_comes_first(
    session: Session, make_member: MakeMember
) -> None:
    now = utcnow()
    template = _template(session, valid_days=7, valid_until=now + timedelta(days=3))
    coupon = coupons.issue_coupon(session, template.id, make_member().id, at=now)
    assert coupon.expires_at == now + timedelta(days=3)


def test_a_claim_code_gives_each_member_her_limit_and_no_more_than_the_total(
    session: Session, make_member: MakeMember
) -> None:
    _template(
        session,
        rules=coupons.TemplateRules(claim_code="live618"),
        total_limit=2,
        per_member_limit=1,
    )
    first, second, third = make_member(), make_member(), make_member()
    assert service.claim_coupon(session, "LIVE618", first.id).issued_via == "claim"
    with pytest.raises(CouponLimitReached, match="already holds"):
        service.claim_coupon(session, "live618", first.id)
    service.claim_coupon(session, " Live618 ", second.id)
    with pytest.raises(CouponLimitReached, match="are issued"):
        service.claim_coupon(session, "LIVE618", third.id)
    with pytest.raises(NotFound):
        service.claim_coupon(session, "NOPE", third.id)
    with pytest.raises(AlreadyExists, match="Claim code"):
        _template(session, "OTHER", rules=coupons.TemplateRules(claim_code="LIVE618"))


def test_a_paused_template_gives_out_no_more_but_coupons_held_stay_usable(
    session: Session, make_member: MakeMember
) -> None:
    template = _template(session)
    member = make_member()
    held = coupons.issue_coupon(session, template.id, member.id)
    coupons.set_template_active(session, template.id, False)
    with pytest.raises(CouponTemplateClosed):
        coupons.issue_coupon(session, template.id, make_member().id)
    service.redeem_coupon(session, held.id, _order("P-1"), discount_fen=1_000)


@pytest.mark.parametrize(
    ("terms", "kw", "field"),
    [
        (CouponTerms(CouponKind.PERCENT_OFF, 120), {"valid_days": 7}, "value"),
        (CouponTerms(CouponKind.GIFT_ITEM, 1), {"valid_days": 7}, "gift_sku_id"),
        (CouponTerms(CouponKind.AMOUNT_OFF, 100), {}, "valid_days"),
        (CouponTerms(CouponKind.AMOUNT_OFF, 0), {"valid_days": 7}, "value"),
    ],
)
def test_a_template_that_cannot_make_a_sensible_coupon_is_refused_naming_the_field(
    session: Session, terms: CouponTerms, kw: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        coupons.create_template(session, code="BAD", name="bad", terms=terms, **kw)  # type: ignore[arg-type]
    assert refused.value.errors == [{"field": field, "message": refused.value.errors[0]["message"]}]


def test_free_delivery_needs_no_value(session: Session) -> None:
    template = coupons.create_template(
        session,
        code="SHIP0",
        name="免运费",
        terms=CouponTerms(CouponKind.FREE_DELIVERY, 0),
        valid_days=30,
    )
    assert template.kind is CouponKind.FREE_DELIVERY


def test_a_cancelled_order_gives_back_only_its_own_coupons_not_a_pos_sales_of_the_same_number(
    session: Session, make_member: MakeMember
) -> None:
    """A store's till and the app number their sales apart: the same string may name a POS sale
    and an order, and only the order's coupons come back when it is cancelled."""
    member = make_member()
    at_the_till = coupons.issue_coupon(session, _template(session).id, member.id)
    in_the_app = coupons.issue_coupon(session, _template(session, "T10-APP").id, member.id)
    sale = service.Source(SourceType.POS_SALE, "SH001-0042")
    service.redeem_coupon(session, at_the_till.id, sale, discount_fen=1_000)
    service.redeem_coupon(session, in_the_app.id, _order("SH001-0042"), discount_fen=1_000)

    order = _order("SH001-0042")
    assert service.restore_coupons_of(session, order, cancelled=True) == [in_the_app.id]
    session.refresh(at_the_till)
    assert (at_the_till.status, at_the_till.redeemed_source_type) == (
        CouponStatus.REDEEMED,
        SourceType.POS_SALE,
    )
    assert service.restore_coupons_of(session, sale, cancelled=True) == [at_the_till.id]


def test_an_erased_members_order_forfeits_only_its_own_coupons_not_a_pos_sales_of_the_same_number(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    at_the_till = coupons.issue_coupon(session, _template(session).id, member.id)
    in_the_app = coupons.issue_coupon(session, _template(session, "T10-APP").id, member.id)
    service.redeem_coupon(
        session, at_the_till.id, service.Source(SourceType.POS_SALE, "SH001-0043"), discount_fen=1
    )
    service.redeem_coupon(session, in_the_app.id, _order("SH001-0043"), discount_fen=1_000)
    members.erase_member(session, member.id)

    back = service.give_back_coupons(session, member.id, _order("SH001-0043"), cancelled=True)
    assert (back.restored, back.forfeited) == ([], [in_the_app.id])


def test_the_coupon_history_names_the_kind_of_source_that_gave_it_back(
    session: Session, make_member: MakeMember
) -> None:
    """The restore is written against the same source its redemption was, kind included."""
    coupon = coupons.issue_coupon(session, _template(session).id, make_member().id)
    service.redeem_coupon(session, coupon.id, _order("ORDER-13"), discount_fen=1_000)
    service.restore_coupons_of(session, _order("ORDER-13"), cancelled=True)
    uses = session.execute(
        select(CouponUse.action, CouponUse.reference)
        .where(CouponUse.coupon_id == coupon.id, CouponUse.action != CouponAction.ISSUE)
        .order_by(CouponUse.id)
    ).all()
    assert [tuple(use) for use in uses] == [
        (CouponAction.REDEEM, "order:ORDER-13"),
        (CouponAction.RESTORE, "order:ORDER-13"),
    ]


def test_a_till_sale_that_is_an_order_too_gives_back_the_coupons_redeemed_under_either_name(
    session: Session, make_member: MakeMember
) -> None:
    """A till redeems a coupon tender for its sale (``pos_sale`` under the order's id); the
    order's return names both, and the history says which one each coupon came back from."""
    member = make_member()
    tendered = coupons.issue_coupon(session, _template(session).id, member.id)
    priced = coupons.issue_coupon(session, _template(session, "T10-QUOTE").id, member.id)
    till_sale = service.Source(SourceType.POS_SALE, "0197-till-order")
    service.redeem_coupon(session, tendered.id, till_sale, discount_fen=1_000)
    service.redeem_coupon(session, priced.id, _order("0197-till-order"), discount_fen=1_000)

    back = service.give_back_coupons(session, member.id, _order("0197-till-order"), till_sale)
    assert sorted(back.restored) == sorted([tendered.id, priced.id])
    restores = session.execute(
        select(CouponUse.coupon_id, CouponUse.reference).where(
            CouponUse.action == CouponAction.RESTORE
        )
    ).all()
    assert sorted(tuple(use) for use in restores) == sorted(
        [(tendered.id, "pos_sale:0197-till-order"), (priced.id, "order:0197-till-order")]
    )
