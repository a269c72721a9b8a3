"""The points ledger: exactly once per source, nearest expiry first, never below zero."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from zhongtai.core.audit import AuditEntry
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput, NotFound
from zhongtai.core.outbox import OutboxEvent
from zhongtai.loyalty import rules
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.errors import InsufficientPoints, SourceAlreadyRecorded
from zhongtai.loyalty.models import EntryKind, PointsEntry, PointsLot, PointsLotUse, SourceType

Source = loyalty.Source


def sale(n: str) -> Source:
    return Source(SourceType.POS_SALE, n)


def order(n: str) -> Source:
    return Source(SourceType.ORDER, n)


def balance(session: Session, member_id, at=None) -> int:  # type: ignore[no-untyped-def]
    return loyalty.points_balance(session, member_id, at or utcnow()).balance


def entries(session: Session, member_id, kind: EntryKind) -> list[PointsEntry]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(PointsEntry).where(PointsEntry.member_id == member_id, PointsEntry.kind == kind)
        )
    )


def test_a_replayed_earn_changes_nothing_the_second_time(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    first = loyalty.earn_points(session, member.id, sale("POS-1"), 88)
    replay = loyalty.earn_points(session, member.id, sale("POS-1"), 88)
    assert (first.replayed, replay.replayed) == (False, True)
    assert replay.entry.id == first.entry.id
    assert balance(session, member.id) == 88
    assert len(entries(session, member.id, EntryKind.EARN)) == 1
    events = session.scalar(
        select(func.count()).where(
            OutboxEvent.type == "points.earned", OutboxEvent.aggregate_id == str(member.id)
        )
    )
    assert events == 1


def test_a_replay_with_other_figures_is_refused(session: Session, make_member: MakeMember) -> None:
    member = make_member()
    loyalty.earn_points(session, member.id, sale("POS-2"), 10)
    with pytest.raises(SourceAlreadyRecorded):
        loyalty.earn_points(session, member.id, sale("POS-2"), 11)


def test_a_sale_earns_by_the_rules_on_what_was_paid_with_money(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    booked = loyalty.earn_for_sale(
        session,
        member.id,
        sale("POS-3"),
        [rules.SaleLine(15_000), rules.SaleLine(5_000)],
        [rules.Tender(rules.TenderKind.COUPON, 2_000), rules.Tender(rules.TenderKind.CASH, 18_000)],
        points_per_yuan=2,
    )
    assert (booked.entry.points, booked.entry.amount_fen) == (360, 20_000)


def test_spending_takes_the_nearest_expiry_first_and_records_the_lots_it_used(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = utcnow()
    late = loyalty.earn_points(
        session, member.id, sale("L"), 100, at=now, valid_for=timedelta(days=300)
    )
    soon = loyalty.earn_points(
        session, member.id, sale("S"), 100, at=now, valid_for=timedelta(days=10)
    )
    spent = loyalty.redeem_points(session, member.id, order("O-1"), 150, at=now)
    uses = dict(
        session.execute(
            select(PointsLot.entry_id, PointsLotUse.points)
            .join(PointsLot, PointsLot.id == PointsLotUse.lot_id)
            .where(PointsLotUse.entry_id == spent.entry.id)
        ).all()
    )
    assert uses == {soon.entry.id: 100, late.entry.id: 50}
    assert spent.entry.points == -150 and spent.entry.balance_after == 50
    assert balance(session, member.id) == 50


def test_redeeming_more_than_the_balance_is_refused_and_books_nothing(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    loyalty.earn_points(session, member.id, sale("X"), 50)
    with pytest.raises(InsufficientPoints) as refused:
        loyalty.redeem_points(session, member.id, order("O-2"), 51)
    assert refused.value.extra == {"requested": 51, "available": 50}
    assert entries(session, member.id, EntryKind.REDEEM) == []
    assert balance(session, member.id) == 50
    # The same source may be tried again once the points are there.
    loyalty.earn_points(session, member.id, sale("Y"), 1)
    assert not loyalty.redeem_points(session, member.id, order("O-2"), 51).replayed


def test_a_replayed_redemption_spends_once(session: Session, make_member: MakeMember) -> None:
    member = make_member()
    loyalty.earn_points(session, member.id, sale("Z"), 100)
    loyalty.redeem_points(session, member.id, order("O-3"), 60)
    assert loyalty.redeem_points(session, member.id, order("O-3"), 60).replayed
    assert balance(session, member.id) == 40


def test_the_expiry_job_writes_one_entry_per_lot_and_running_it_again_changes_nothing(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    start = utcnow()
    loyalty.earn_points(session, member.id, sale("E1"), 70, at=start, valid_for=timedelta(days=1))
    loyalty.earn_points(session, member.id, sale("E2"), 30, at=start, valid_for=timedelta(days=90))
    loyalty.redeem_points(session, member.id, order("O-4"), 20, at=start)
    later = start + timedelta(days=2)
    run = loyalty.expire_points(session, later)
    assert (run.lots, run.points) == (1, 50)
    assert loyalty.expire_points(session, later).lots == 0
    assert balance(session, member.id, later) == 30
    assert [e.points for e in entries(session, member.id, EntryKind.EXPIRE)] == [-50]
    assert loyalty.verify(session).clean


def test_points_past_their_date_cannot_be_spent_even_before_the_job_runs(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    start = utcnow()
    loyalty.earn_points(session, member.id, sale("E3"), 40, at=start, valid_for=timedelta(days=1))
    later = start + timedelta(days=2)
    assert balance(session, member.id, later) == 0
    with pytest.raises(InsufficientPoints):
        loyalty.redeem_points(session, member.id, order("O-5"), 10, at=later)


def test_a_partial_return_takes_back_points_in_proportion(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    loyalty.earn_points(session, member.id, sale("R1"), 100, basis_fen=10_000)
    first = loyalty.reverse_points(
        session,
        member.id,
        Source(SourceType.RETURN, "RET-1"),
        earned_by=sale("R1"),
        returned_fen=2_500,
    )
    assert (first.entry.points, first.entry.debt_change) == (-25, 0)
    rest = loyalty.reverse_points(
        session,
        member.id,
        Source(SourceType.RETURN, "RET-2"),
        earned_by=sale("R1"),
        returned_fen=7_500,
    )
    assert rest.entry.points == -75
    assert balance(session, member.id) == 0
    with pytest.raises(InvalidInput, match="returned_fen"):
        loyalty.reverse_points(
            session,
            member.id,
            Source(SourceType.RETURN, "RET-3"),
            earned_by=sale("R1"),
            returned_fen=1,
        )


def test_a_return_of_spent_points_leaves_a_debt_that_the_next_earning_pays_off(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    loyalty.earn_points(session, member.id, sale("D1"), 100, basis_fen=10_000)
    loyalty.redeem_points(session, member.id, order("O-6"), 80)
    reversed_ = loyalty.reverse_points(
        session,
        member.id,
        Source(SourceType.RETURN, "RET-D"),
        earned_by=sale("D1"),
        returned_fen=10_000,
    )
    assert (reversed_.entry.points, reversed_.entry.debt_change) == (-20, 80)
    assert (balance(session, member.id), reversed_.entry.debt_after) == (0, 80)
    loyalty.earn_points(session, member.id, sale("D2"), 50)
    assert loyalty.points_balance(session, member.id, utcnow()).debt == 30
    assert balance(session, member.id) == 0
    loyalty.earn_points(session, member.id, sale("D3"), 50)
    now = loyalty.points_balance(session, member.id, utcnow())
    assert (now.balance, now.debt) == (20, 0)
    assert loyalty.verify(session).clean


def test_a_return_for_a_sale_that_earned_nothing_here_is_not_found(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    with pytest.raises(NotFound):
        loyalty.reverse_points(
            session,
            member.id,
            Source(SourceType.RETURN, "RET-X"),
            earned_by=sale("none"),
            returned_fen=1,
        )


def test_hq_adjusts_with_a_reason_and_cannot_debit_beyond_the_balance(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    ref = Source(SourceType.ADJUSTMENT, "TICKET-1")
    loyalty.adjust_points(session, member.id, ref, 30, reason="goodwill for a late delivery")
    [audit] = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "points.adjusted", AuditEntry.subject_id == str(member.id)
        )
    ).all()
    assert audit.after == {
        "balance": 30,
        "points": 30,
        "reason": "goodwill for a late delivery",
        "reference": "TICKET-1",
    }
    with pytest.raises(InvalidInput, match="reason"):
        loyalty.adjust_points(
            session, member.id, Source(SourceType.ADJUSTMENT, "T2"), 5, reason=" "
        )
    with pytest.raises(InsufficientPoints):
        loyalty.adjust_points(
            session, member.id, Source(SourceType.ADJUSTMENT, "T3"), -31, reason="x"
        )
    loyalty.adjust_points(
        session, member.id, Source(SourceType.ADJUSTMENT, "T4"), -30, reason="fix"
    )
    assert balance(session, member.id) == 0
    assert loyalty.verify(session).clean


def test_verify_finds_a_lot_changed_behind_the_ledgers_back(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    loyalty.earn_points(session, member.id, sale("V1"), 100)
    assert loyalty.verify(session).clean
    session.execute(update(PointsLot).where(PointsLot.member_id == member.id).values(remaining=90))
    report = loyalty.verify(session)
    assert not report.clean
    assert {d.member_id for d in report.discrepancies} == {member.id}
    assert any("lots hold 90" in d.what for d in report.discrepancies)
