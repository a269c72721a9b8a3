"""The demo chain's loyalty books: points `zhongtai loyalty verify` proves, earned by the
history's completed member orders and taken back by their returns, signup bonuses, gifts and
expiries booked as the ledger services book them; tiers by the rolling year's spend; coupons
counted on their templates and used by orders as the coupon services record it — and the live
services carry on from them."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.demo.conftest import SEED_DAY, SMALL_CHAIN_MEMBERS, small_chain
from zhongtai.cli import app
from zhongtai.core.clock import as_utc
from zhongtai.core.db import Database
from zhongtai.demo.history_loader import build_demo_history
from zhongtai.demo.orders_history import history_window
from zhongtai.demo.points_history import SIGNUP_BONUS, SIGNUP_CAMPAIGN
from zhongtai.demo.points_ledger import nightly_run
from zhongtai.loyalty import rules
from zhongtai.loyalty.accounts import Source
from zhongtai.loyalty.coupon_use import redeem_coupon
from zhongtai.loyalty.errors import CouponNotRedeemable
from zhongtai.loyalty.ledger import earn_points, redeem_points
from zhongtai.loyalty.models import (
    Coupon,
    CouponAction,
    CouponStatus,
    CouponTemplate,
    CouponUse,
    EntryKind,
    MemberTier,
    PointsAccount,
    PointsEntry,
    PointsLot,
    SourceType,
)
from zhongtai.loyalty.tier_rules import RANK, Tier, tier_for_spend
from zhongtai.loyalty.tiers import rolling_spend
from zhongtai.loyalty.verify import verify
from zhongtai.members.models import Member
from zhongtai.orders.models import Order, OrderLine, OrderReturn, Payment

START, END = history_window(SEED_DAY, 90, "Asia/Shanghai")


@pytest.fixture(scope="module")
def db(history_url: str) -> Iterator[Database]:
    database = Database.connect(history_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.reader() as s:
        yield s


def _entries(session: Session, kind: EntryKind) -> list[PointsEntry]:
    return list(session.scalars(select(PointsEntry).where(PointsEntry.kind == kind)))


def test_loyalty_verify_proves_the_seeded_books_clean(history_url: str, session: Session) -> None:
    result = CliRunner().invoke(
        app, ["loyalty", "verify"], env={"ZHONGTAI_DATABASE_URL": history_url}
    )
    assert result.exit_code == 0, result.output
    assert f"{SMALL_CHAIN_MEMBERS} accounts" in result.stdout
    report = verify(session)
    assert report.clean and report.lots > SMALL_CHAIN_MEMBERS


def test_each_completed_member_order_earned_once_on_the_money_paid_for_its_goods(
    session: Session,
) -> None:
    nets: Counter[uuid.UUID] = Counter()
    for order_id, net, short in session.execute(
        select(OrderLine.order_id, OrderLine.net_amount, OrderLine.short_refund)
    ):
        nets[order_id] += net - short
    earned = {
        uuid.UUID(e.source_id): e
        for e in _entries(session, EntryKind.EARN)
        if e.source_type is SourceType.ORDER
    }
    credited = 0
    for order in session.scalars(select(Order)):
        entry = earned.pop(order.id, None)
        if order.member_id is None or order.completed_at is None:
            assert entry is None, order.number
            continue
        assert entry is not None, order.number
        credited += 1
        assert entry.member_id == order.member_id and entry.store_id == order.store_id
        assert as_utc(entry.occurred_at) == as_utc(order.completed_at)
        assert entry.amount_fen == nets[order.id]
        # One point a yuan, times her tier's multiplier (from 100 % to 200 %) when it earned.
        assert nets[order.id] // 100 <= entry.points <= 2 * nets[order.id] // 100
    assert credited > 1000 and not earned


def test_returns_take_back_what_their_share_of_the_sale_earned(session: Session) -> None:
    earns = {e.id: e for e in _entries(session, EntryKind.EARN)}
    returns = {r.id: r for r in session.scalars(select(OrderReturn))}
    taken: Counter[uuid.UUID] = Counter()
    returned: Counter[uuid.UUID] = Counter()
    reversals = _entries(session, EntryKind.REVERSE)
    assert reversals
    for entry in reversals:
        came_back = returns[uuid.UUID(entry.source_id)]
        assert entry.related_entry_id is not None
        earn = earns[entry.related_entry_id]
        assert earn.source_id == str(came_back.order_id)
        assert entry.amount_fen is not None and entry.amount_fen <= came_back.refund_total
        taken[earn.id] += entry.debt_change - entry.points
        returned[earn.id] += entry.amount_fen
    for earn_id, points in taken.items():
        earn = earns[earn_id]
        assert earn.amount_fen is not None
        assert points == rules.reversal_points(earn.points, earn.amount_fen, 0, returned[earn_id])


def test_every_member_got_her_signup_bonus_and_points_kept_a_year_expired(
    session: Session,
) -> None:
    joined = {m.id: as_utc(m.created_at) for m in session.scalars(select(Member))}
    bonuses = [e for e in _entries(session, EntryKind.EARN) if e.source_type is SourceType.CAMPAIGN]
    assert {e.member_id for e in bonuses} == set(joined) and len(bonuses) == len(joined)
    for bonus in bonuses:
        assert bonus.source_id == SIGNUP_CAMPAIGN and bonus.points == SIGNUP_BONUS
        assert as_utc(bonus.occurred_at) == joined[bonus.member_id]
    lots = {lot.id: lot for lot in session.scalars(select(PointsLot))}
    expired = _entries(session, EntryKind.EXPIRE)
    assert len(expired) > 0.2 * len(joined)
    for entry in expired:
        lot = lots[uuid.UUID(entry.source_id)]
        assert lot.member_id == entry.member_id and lot.remaining == 0
        assert as_utc(lot.expires_at) <= as_utc(entry.occurred_at) < END  # type: ignore[arg-type]
    for lot in lots.values():
        assert lot.expires_at is not None
        if nightly_run(as_utc(lot.expires_at)) < END:
            assert lot.remaining == 0, "the nightly expiry ran over it"


def test_each_members_entries_run_from_zero_to_her_balance_and_never_overdraw(
    session: Session,
) -> None:
    running: dict[uuid.UUID, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for entry in session.scalars(
        select(PointsEntry).order_by(PointsEntry.member_id, PointsEntry.id)
    ):
        balance, debt = running[entry.member_id]
        assert entry.balance_after == balance + entry.points >= 0
        assert entry.debt_after == debt + entry.debt_change >= 0
        running[entry.member_id] = (entry.balance_after, entry.debt_after)
    for account in session.scalars(select(PointsAccount)):
        assert running[account.member_id] == (account.balance, account.debt)
    gifts = _entries(session, EntryKind.REDEEM)
    assert gifts and all(g.reason and g.reason.startswith("积分商城兑换") for g in gifts)


def test_tiers_follow_the_rolling_years_spend_as_the_tier_service_reckons_it(
    session: Session,
) -> None:
    tiers = {t.member_id: t for t in session.scalars(select(MemberTier))}
    assert len(tiers) == SMALL_CHAIN_MEMBERS
    reversed_for = {e.member_id for e in _entries(session, EntryKind.REVERSE)}
    for member_id, row in tiers.items():
        earned = tier_for_spend(rolling_spend(session, member_id, END))
        if member_id in reversed_for:  # a return lowers the spend; the tier waits for review
            assert RANK[row.tier] >= RANK[earned]
        else:
            assert row.tier is earned, member_id
        assert as_utc(row.review_at) > END - timedelta(days=1)
        assert as_utc(row.since) <= END
    assert Counter(t.tier for t in tiers.values())[Tier.SILVER] > 0


def test_coupon_counts_agree_with_their_templates_and_limits(session: Session) -> None:
    templates = {t.id: t for t in session.scalars(select(CouponTemplate))}
    assert len(templates) == 5
    coupons = list(session.scalars(select(Coupon)))
    issued = Counter(c.template_id for c in coupons)
    held = Counter((c.template_id, c.member_id) for c in coupons)
    for template in templates.values():
        assert template.issued == issued[template.id] > 0, template.code
        assert template.total_limit is None or template.issued <= template.total_limit
    assert all(n <= templates[t].per_member_limit for (t, _), n in held.items())
    claimed = [c for c in coupons if templates[c.template_id].claim_code]
    assert claimed and all(c.issued_via == "claim" for c in claimed)
    status = Counter(
        "redeemed"
        if c.status is CouponStatus.REDEEMED
        else "expired"
        if as_utc(c.expires_at) <= END
        else "available"
        for c in coupons
    )
    assert status["available"] > status["expired"] > 0 and status["redeemed"] > 0


def test_each_coupons_history_says_how_it_stands(session: Session) -> None:
    uses: dict[uuid.UUID, list[CouponUse]] = defaultdict(list)
    for use in session.scalars(select(CouponUse).order_by(CouponUse.occurred_at, CouponUse.id)):
        uses[use.coupon_id].append(use)
    for coupon in session.scalars(select(Coupon)):
        history = uses[coupon.id]
        assert history[0].action is CouponAction.ISSUE
        assert as_utc(history[0].occurred_at) == as_utc(coupon.issued_at)
        assert as_utc(coupon.expires_at) > as_utc(coupon.issued_at)
        settled = [u for u in history if u.action is not CouponAction.LOCK]
        redeemed = settled[-1].action is CouponAction.REDEEM
        assert redeemed == (coupon.status is CouponStatus.REDEEMED), coupon.id
        if redeemed:
            assert settled[-1].discount_fen == coupon.discount_fen
            assert coupon.redeemed_at is not None
            assert as_utc(coupon.redeemed_at) < as_utc(coupon.expires_at)


def test_redeemed_coupons_paid_part_of_their_members_orders(session: Session) -> None:
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.offers.is_not(None)))}
    paid_at = {
        p.order_id: as_utc(p.captured_at)  # type: ignore[arg-type]
        for p in session.scalars(select(Payment).where(Payment.order_id.in_(list(orders))))
    }
    redeemed = list(session.scalars(select(Coupon).where(Coupon.status == CouponStatus.REDEEMED)))
    assert redeemed
    for coupon in redeemed:
        assert coupon.redeemed_source_type is SourceType.ORDER
        assert coupon.redeemed_source_id is not None and coupon.redeemed_at is not None
        order = orders[uuid.UUID(coupon.redeemed_source_id)]
        assert order.member_id == coupon.member_id
        assert order.offers is not None
        used = {c["coupon_id"]: c["amount"] for c in order.offers["coupons"]}
        assert used[str(coupon.id)] == coupon.discount_fen
        assert order.discount_total >= (coupon.discount_fen or 0)
        assert paid_at[order.id] == as_utc(coupon.redeemed_at)


def test_the_live_services_carry_on_from_a_demo_members_points_and_coupons(db: Database) -> None:
    after = END + timedelta(hours=10)
    with db.writer() as session:
        try:
            richest = session.scalars(
                select(PointsAccount).order_by(PointsAccount.balance.desc()).limit(1)
            ).one()
            spent = redeem_points(
                session, richest.member_id, Source(SourceType.ORDER, "live-1"), 100, at=after
            )
            assert spent.entry.points == -100
            earn_points(
                session,
                richest.member_id,
                Source(SourceType.ORDER, "live-2"),
                50,
                basis_fen=5000,
                at=after,
            )
            assert verify(session).clean
            coupon = session.scalars(
                select(Coupon)
                .join(CouponTemplate)
                .where(
                    CouponTemplate.code == "DEMO-MAN100-20",
                    Coupon.status == CouponStatus.AVAILABLE,
                    Coupon.expires_at > after,
                )
                .limit(1)
            ).one()
            used = redeem_coupon(
                session, coupon.id, Source(SourceType.ORDER, "live-3"), order_fen=12_000, at=after
            )
            assert used.discount_fen == 2000
            with pytest.raises(CouponNotRedeemable):
                redeem_coupon(
                    session, coupon.id, Source(SourceType.ORDER, "live-4"), order_fen=12_000
                )
        finally:
            session.rollback()


def test_the_same_seed_and_day_give_the_same_coupons_points_and_tiers() -> None:
    chain = small_chain()
    ranges = {s["id"]: [sku["id"] for sku in chain.catalog.skus] for s in chain.stores}

    def books() -> tuple[object, ...]:
        history = build_demo_history(chain, ranges=ranges, guides={}, today=SEED_DAY, days=21)
        coupons, points = history.coupons, history.points
        return (coupons.templates, coupons.coupons, coupons.uses, *vars(points).values())

    first = books()
    assert all(first) and first == books()
