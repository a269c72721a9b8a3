"""Paying with several tenders (only cash gives change) and refunding to them in a fixed order."""

from __future__ import annotations

import itertools
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.orders.kinds import TenderType as T
from zhongtai.orders.tender_rules import (
    REFUND_ORDER,
    PaidTender,
    RefundExceedsPaid,
    Tender,
    check_tenders,
    points_given_back,
    refund_plan,
)


def test_cash_over_the_total_is_paid_with_change() -> None:
    check = check_tenders(8650, [Tender(T.CASH, 10000)])
    assert check.ok
    assert check.change == 1350
    assert check.missing == 0


def test_a_card_then_cash_for_the_rest_pays_exactly() -> None:
    check = check_tenders(10000, [Tender(T.BANK_CARD, 6000), Tender(T.CASH, 5000)])
    assert check.ok
    assert check.change == 1000
    assert check.tendered == 11000


def test_cash_listed_first_still_only_covers_what_the_card_leaves() -> None:
    check = check_tenders(10000, [Tender(T.CASH, 5000), Tender(T.WECHAT_PAY, 6000)])
    assert check.ok
    assert check.change == 1000


def test_an_electronic_tender_over_the_remainder_is_refused_by_its_index() -> None:
    check = check_tenders(
        10000, [Tender(T.STORED_VALUE, 4000), Tender(T.ALIPAY, 7000), Tender(T.CASH, 1)]
    )
    assert not check.ok
    assert check.problems[0].field == "tenders.1.amount"
    assert "only 6000 fen remain due" in check.problems[0].message


def test_each_tender_must_be_more_than_zero() -> None:
    check = check_tenders(100, [Tender(T.CASH, 100), Tender(T.BANK_CARD, 0)])
    assert [p.field for p in check.problems] == ["tenders.1.amount"]


def test_tenders_that_fall_short_say_how_much_is_missing() -> None:
    check = check_tenders(10000, [Tender(T.BANK_CARD, 3000), Tender(T.CASH, 2000)])
    assert not check.ok
    assert check.missing == 5000
    assert check.problems[0].field == "tenders"
    assert "5000 missing" in check.problems[0].message


def test_cash_when_the_card_already_paid_everything_is_refused() -> None:
    check = check_tenders(10000, [Tender(T.BANK_CARD, 10000), Tender(T.CASH, 500)])
    assert [p.field for p in check.problems] == ["tenders.1"]


def test_a_free_order_needs_no_tender() -> None:
    assert check_tenders(0, []).ok
    assert not check_tenders(1, []).ok


tenders = st.lists(st.builds(Tender, st.sampled_from(list(T)), st.integers(-5, 50_000)), max_size=6)


@given(st.integers(0, 100_000), tenders)
def test_an_accepted_payment_keeps_exactly_the_total(total: int, offered: list[Tender]) -> None:
    check = check_tenders(total, offered)
    if not check.ok:
        return
    assert all(t.amount > 0 for t in offered)
    assert check.tendered - check.change == total
    non_cash = sum(t.amount for t in offered if t.type is not T.CASH)
    assert non_cash <= total
    assert check.change <= sum(t.amount for t in offered if t.type is T.CASH)


# --- refunds ---------------------------------------------------------------------------------


def paid(kind: T, amount: int, refunded: int = 0) -> PaidTender:
    return PaidTender(uuid.uuid4(), kind, amount, refunded)


def test_a_refund_goes_to_wallets_newest_first_then_card_then_cash_then_points() -> None:
    cash = paid(T.CASH, 2000)
    card = paid(T.BANK_CARD, 3000)
    points = paid(T.POINTS, 500)
    wechat = paid(T.WECHAT_PAY, 1000)
    stored = paid(T.STORED_VALUE, 1500)
    plan = refund_plan([cash, points, wechat, card, stored], 7800)
    assert [(p.payment_id, p.amount) for p in plan] == [
        (stored.payment_id, 1500),
        (wechat.payment_id, 1000),
        (card.payment_id, 3000),
        (cash.payment_id, 2000),
        (points.payment_id, 300),
    ]
    assert [p.is_money for p in plan] == [True, True, True, True, False]


def test_what_a_tender_already_refunded_is_not_refunded_again() -> None:
    card = paid(T.BANK_CARD, 3000, refunded=2500)
    cash = paid(T.CASH, 1000)
    plan = refund_plan([card, cash], 900)
    assert [(p.type, p.amount) for p in plan] == [(T.BANK_CARD, 500), (T.CASH, 400)]


def test_coupon_value_is_drawn_last_and_never_paid_out_as_money() -> None:
    coupon = paid(T.COUPON, 2000)
    cash = paid(T.CASH, 8000)
    half = refund_plan([coupon, cash], 5000)
    assert [(p.type, p.amount, p.is_money) for p in half] == [(T.CASH, 5000, True)]
    everything = refund_plan([coupon, cash], 10000)
    assert [(p.type, p.amount, p.is_money) for p in everything] == [
        (T.CASH, 8000, True),
        (T.COUPON, 2000, False),
    ]


def test_refunding_more_than_the_tenders_still_hold_is_a_conflict() -> None:
    with pytest.raises(RefundExceedsPaid) as refused:
        refund_plan([paid(T.ALIPAY, 1000, refunded=400)], 700)
    assert refused.value.status == 409
    assert "600 fen" in refused.value.detail


def test_a_refund_of_nothing_touches_no_tender() -> None:
    assert refund_plan([paid(T.CASH, 100)], 0) == []


paid_tenders = st.lists(
    st.builds(
        lambda kind, amount, refunded_share: PaidTender(
            uuid.uuid4(), kind, amount, amount * refunded_share // 100
        ),
        st.sampled_from(list(T)),
        st.integers(1, 100_000),
        st.integers(0, 100),
    ),
    max_size=6,
)


@given(paid_tenders, st.data())
def test_a_refund_plan_sums_exactly_and_draws_each_tender_within_what_it_holds(
    tenders_paid: list[PaidTender], data: st.DataObject
) -> None:
    refundable = sum(t.amount - t.refunded for t in tenders_paid)
    amount = data.draw(st.integers(0, refundable))
    plan = refund_plan(tenders_paid, amount)
    assert sum(p.amount for p in plan) == amount
    held = {t.payment_id: t.amount - t.refunded for t in tenders_paid}
    assert all(0 < p.amount <= held[p.payment_id] for p in plan)
    assert len({p.payment_id for p in plan}) == len(plan)
    ranks = [next(r for r, g in enumerate(REFUND_ORDER) if p.type in g) for p in plan]
    assert ranks == sorted(ranks)
    position = {t.payment_id: i for i, t in enumerate(tenders_paid)}
    for (rank_a, a), (rank_b, b) in itertools.pairwise(zip(ranks, plan, strict=True)):
        if rank_a == rank_b:
            assert position[a.payment_id] > position[b.payment_id]  # newest first
    # only the last tender drawn may be left partly unrefunded
    assert all(p.amount == held[p.payment_id] for p in plan[:-1])


@given(paid_tenders, st.integers(1, 1000))
def test_no_plan_refunds_more_than_was_paid(tenders_paid: list[PaidTender], extra: int) -> None:
    refundable = sum(t.amount - t.refunded for t in tenders_paid)
    with pytest.raises(RefundExceedsPaid):
        refund_plan(tenders_paid, refundable + extra)


@given(
    parts=st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=8),
    rate=st.sampled_from([50, 100, 150, 250, 333]),
)
def test_partial_refunds_of_a_points_tender_give_back_what_the_whole_refund_would(
    parts: list[int], rate: int
) -> None:
    back, before = [], 0
    for part in parts:
        back.append(points_given_back(before, part, rate))
        before += part
    assert sum(back) == before * rate // 100 == points_given_back(0, before, rate)
    assert all(b >= 0 for b in back)


def test_at_150_points_a_yuan_101_then_99_fen_give_back_all_300_points() -> None:
    assert points_given_back(0, 101, 150) + points_given_back(101, 99, 150) == 300
