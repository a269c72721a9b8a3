"""Merging the same person found twice: everything moves to the survivor, once, traceably."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember, new_phone
from zhongtai.core.audit import AuditEntry
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput
from zhongtai.core.outbox import OutboxEvent
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.models import PointsLot, SourceType
from zhongtai.members import service
from zhongtai.members.models import ConsentChannel, IdentityKind, MemberStatus
from zhongtai.members.pii import PiiCipher


def _sale(n: str) -> loyalty.Source:
    return loyalty.Source(SourceType.POS_SALE, n)


def test_a_merge_moves_identities_consents_and_points_to_the_survivor(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    phone, card = new_phone(), "CARD-77"
    survivor = make_member(phone, name="周洁")
    duplicate = make_member(birthday=date(1990, 7, 7))
    service.link_identity(session, cipher, duplicate.id, IdentityKind.POS_CARD, card)
    service.set_consent(session, duplicate.id, ConsentChannel.WECOM, granted=True, source="guide")
    loyalty.earn_points(session, survivor.id, _sale("A"), 100)
    loyalty.earn_points(session, duplicate.id, _sale("B"), 250)

    trace = service.merge_members(session, survivor.id, duplicate.id)

    assert service.find_member_id(session, cipher, IdentityKind.POS_CARD, card) == survivor.id
    assert len(service.identities_of(session, survivor.id)) == 3  # her phone, its phone, card
    kept = service.get_member(session, survivor.id)
    assert (kept.name, kept.birthday) == ("周洁", date(1990, 7, 7))
    wecom = next(
        c for c in service.consents_of(session, survivor.id) if c.channel is ConsentChannel.WECOM
    )
    assert wecom.granted
    assert loyalty.points_balance(session, survivor.id, utcnow()).balance == 350
    assert (
        session.scalar(
            select(func.count()).select_from(PointsLot).where(PointsLot.member_id == duplicate.id)
        )
        == 0
    )
    assert loyalty.verify(session).clean
    assert trace.moved["points"] == {
        "lots": 1,
        "points": 250,
        "debt": 0,
        "tier": "standard",
        "coupons": 0,
    }
    [audit] = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "member.merged", AuditEntry.subject_id == str(duplicate.id)
        )
    ).all()
    assert audit.after is not None and audit.after["survivor_id"] == str(survivor.id)
    assert len(trace.moved["identities"]) == 2


def test_the_merged_members_id_still_finds_the_survivor(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    service.merge_members(session, survivor.id, duplicate.id)
    assert service.get_member(session, duplicate.id).id == survivor.id
    session.refresh(duplicate)
    assert (duplicate.status, duplicate.merged_into_id) == (MemberStatus.MERGED, survivor.id)


def test_merging_the_same_pair_again_answers_the_first_merge_and_changes_nothing(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    loyalty.earn_points(session, duplicate.id, _sale("C"), 40)
    first = service.merge_members(session, survivor.id, duplicate.id)
    second = service.merge_members(session, survivor.id, duplicate.id)
    assert second.id == first.id
    assert loyalty.points_balance(session, survivor.id, utcnow()).balance == 40
    events = session.scalar(
        select(func.count()).where(
            OutboxEvent.type == "member.merged", OutboxEvent.aggregate_id == str(survivor.id)
        )
    )
    assert events == 1


def test_a_replayed_sale_after_a_merge_does_not_earn_twice(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    loyalty.earn_points(session, duplicate.id, _sale("D"), 70)
    service.merge_members(session, survivor.id, duplicate.id)
    replay = loyalty.earn_points(session, duplicate.id, _sale("D"), 70)
    assert replay.replayed
    assert loyalty.points_balance(session, survivor.id, utcnow()).balance == 70


def test_merges_chain_into_one_hop_to_the_last_survivor(
    session: Session, make_member: MakeMember
) -> None:
    a, b, c = make_member(), make_member(), make_member()
    service.merge_members(session, b.id, a.id)
    service.merge_members(session, c.id, b.id)
    assert service.get_member(session, a.id).id == c.id
    session.refresh(a)
    assert a.merged_into_id == c.id


def test_a_member_cannot_merge_with_herself_nor_into_a_merged_member(
    session: Session, make_member: MakeMember
) -> None:
    a, b, c = make_member(), make_member(), make_member()
    with pytest.raises(InvalidInput):
        service.merge_members(session, a.id, a.id)
    service.merge_members(session, a.id, b.id)
    with pytest.raises(Conflict, match="already merged"):
        service.merge_members(session, b.id, c.id)
    with pytest.raises(Conflict, match="already merged"):
        service.merge_members(session, c.id, b.id)


def test_a_debt_of_one_is_paid_by_the_points_of_the_other_when_they_merge(
    session: Session, make_member: MakeMember
) -> None:
    survivor, duplicate = make_member(), make_member()
    loyalty.earn_points(session, duplicate.id, _sale("E"), 100, basis_fen=10_000)
    loyalty.redeem_points(session, duplicate.id, loyalty.Source(SourceType.ORDER, "O-E"), 100)
    loyalty.reverse_points(
        session,
        duplicate.id,
        loyalty.Source(SourceType.RETURN, "R-E"),
        earned_by=_sale("E"),
        returned_fen=10_000,
    )
    loyalty.earn_points(session, survivor.id, _sale("F"), 300)
    service.merge_members(session, survivor.id, duplicate.id)
    balance = loyalty.points_balance(session, survivor.id, utcnow())
    assert (balance.balance, balance.debt) == (200, 0)
    assert loyalty.verify(session).clean
