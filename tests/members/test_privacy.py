"""Masking by role, consent per channel, export of everything held, erasure that keeps books."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import Factory
from tests.members.conftest import MakeMember, new_phone
from zhongtai.core.audit import AuditEntry
from zhongtai.core.errors import InvalidInput
from zhongtai.core.outbox import OutboxEvent
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.models import SourceType
from zhongtai.members import service
from zhongtai.members.errors import MemberErased
from zhongtai.members.models import ConsentChannel, ConsentRecord, IdentityKind, MemberIdentity
from zhongtai.members.pii import PiiCipher


def test_a_caller_without_pii_sees_the_phone_masked_and_hq_sees_it_whole(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    member = make_member("13812341234")
    masked = service.describe_member(session, cipher, member.id, may_see_pii=False)
    whole = service.describe_member(session, cipher, member.id, may_see_pii=True)
    assert [(i.value, i.masked) for i in masked.identities] == [("138****1234", True)]
    assert [(i.value, i.masked) for i in whole.identities] == [("13812341234", False)]


def test_the_profile_keeps_birthday_store_sizes_and_tidy_tags(
    session: Session, factory: Factory, make_member: MakeMember
) -> None:
    store = factory.location()
    member = make_member()
    service.update_profile(
        session,
        member.id,
        name="陈静",
        birthday=date(1992, 3, 8),
        preferred_store_id=store.id,
        preferences={"top_size": "M", "shoe_size": "37"},
        tags=[" 鲜食 ", "鲜食", "VIP", ""],
    )
    got = service.get_member(session, member.id)
    assert (got.name, got.birthday, got.preferred_store_id) == ("陈静", date(1992, 3, 8), store.id)
    assert got.preferences == {"top_size": "M", "shoe_size": "37"}
    assert got.tags == ["鲜食", "VIP"]


def test_an_unknown_preferred_store_is_a_422_naming_the_field(
    session: Session, make_member: MakeMember
) -> None:
    import uuid

    member = make_member()
    with pytest.raises(InvalidInput) as refused:
        service.update_profile(session, member.id, preferred_store_id=uuid.uuid4())
    assert [e["field"] for e in refused.value.errors or []] == ["preferred_store_id"]


def test_consent_is_recorded_per_channel_with_time_and_source_and_repeats_change_nothing(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    before = {c.channel: c.granted for c in service.consents_of(session, member.id)}
    assert before == {
        ConsentChannel.SMS: False,
        ConsentChannel.WECOM: False,
        ConsentChannel.APP_PUSH: False,
    }
    service.set_consent(session, member.id, ConsentChannel.SMS, granted=True, source="pos")
    service.set_consent(session, member.id, ConsentChannel.SMS, granted=True, source="app")
    service.set_consent(session, member.id, ConsentChannel.WECOM, granted=True, source="guide")
    service.set_consent(session, member.id, ConsentChannel.WECOM, granted=False, source="app")
    now = {c.channel: (c.granted, c.source) for c in service.consents_of(session, member.id)}
    assert now[ConsentChannel.SMS] == (True, "pos")
    assert now[ConsentChannel.WECOM] == (False, "app")
    assert now[ConsentChannel.APP_PUSH] == (False, None)
    records = session.scalar(
        select(func.count()).select_from(ConsentRecord).where(ConsentRecord.member_id == member.id)
    )
    events = session.scalar(
        select(func.count()).where(
            OutboxEvent.type == "consent.changed", OutboxEvent.aggregate_id == str(member.id)
        )
    )
    assert records == events == 3


def test_an_export_holds_her_profile_phone_in_clear_consent_history_and_points(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    phone = new_phone()
    member = make_member(phone, name="赵敏")
    service.set_consent(session, member.id, ConsentChannel.SMS, granted=True, source="pos")
    loyalty.earn_points(session, member.id, loyalty.Source(SourceType.POS_SALE, "S-1"), 120)
    data = service.export_member(session, cipher, member.id)
    assert data["member"]["name"] == "赵敏"
    assert data["identities"] == [
        {"kind": "phone", "value": phone, "linked_at": data["identities"][0]["linked_at"]}
    ]
    assert [c["channel"] for c in data["consents"]] == ["sms"]
    assert data["points"]["accounts"][0]["balance"] == 120
    assert [e["kind"] for e in data["points"]["entries"]] == ["earn"]


def test_erasure_forgets_the_person_but_keeps_her_points_ledger_whole(
    session: Session, cipher: PiiCipher, make_member: MakeMember
) -> None:
    phone = new_phone()
    member = make_member(phone, name="孙丽", birthday=date(1988, 1, 2))
    service.link_identity(session, cipher, member.id, IdentityKind.POS_CARD, "CARD-0001")
    loyalty.earn_points(session, member.id, loyalty.Source(SourceType.POS_SALE, "S-2"), 300)
    loyalty.redeem_points(session, member.id, loyalty.Source(SourceType.ORDER, "O-2"), 100)

    erased = service.erase_member(session, member.id)

    assert erased.status.value == "erased" and erased.erased_at is not None
    assert (erased.name, erased.birthday, erased.preferences, erased.tags) == (None, None, {}, [])
    assert (
        session.scalar(
            select(func.count())
            .select_from(MemberIdentity)
            .where(MemberIdentity.member_id == member.id)
        )
        == 0
    )
    assert service.find_member_id(session, cipher, IdentityKind.PHONE, phone) is None
    assert loyalty.verify(session).clean
    assert loyalty.points_balance(session, member.id, erased.erased_at).balance == 200
    [event] = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.type == "member.erased", OutboxEvent.aggregate_id == str(member.id)
        )
    ).all()
    assert set(event.payload) == {"member_id", "erased_at"}
    audited = session.scalars(
        select(AuditEntry.action).where(AuditEntry.subject_id == str(member.id))
    ).all()
    assert audited == ["member.erased"]
    # Coming back with the same phone, she is a new member: nothing links her to the old id.
    again, created = service.find_or_create_member(
        session, cipher, IdentityKind.PHONE, phone, via="app"
    )
    assert created and again.id != member.id


def test_an_erased_member_earns_nothing_more_and_erasing_again_changes_nothing(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    service.erase_member(session, member.id)
    service.erase_member(session, member.id)
    with pytest.raises(MemberErased):
        loyalty.earn_points(session, member.id, loyalty.Source(SourceType.POS_SALE, "S-3"), 5)
    events = session.scalar(
        select(func.count()).where(
            OutboxEvent.type == "member.erased", OutboxEvent.aggregate_id == str(member.id)
        )
    )
    assert events == 1
